import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPool, type Pool, type RowDataPacket } from 'mysql2/promise';
import { ConfigError, ShuttingDownError, StorageError } from '../sdk/errors.js';
import { DEFAULT_OFFSET_TABLE, MysqlOffsetStore } from '../sdk/offsets/mysql-offset-store.js';
import type { CommittedOffset } from '../sdk/offsets/offset-store.js';
import { startMariaDb, type MariaDbServer } from './harness/mariadb.js';
import { uniqueName } from './harness/temp-dir.js';

function at(topic: string, brokerId: number, partition: number, offset: number, msgId = -1n): CommittedOffset {
  return { topic, partition: { brokerId, partition }, offset, msgId };
}

describe('offsets/mysql-offset-store against a private MariaDB', () => {
  let db: MariaDbServer;
  let pool: Pool;
  let tables = 0;
  const table = (): string => `offsets_${process.pid}_${++tables}`;

  before(async () => {
    db = await startMariaDb();
    // Default mysql2 settings (no supportBigNumbers): the store must still read 64-bit ids exactly.
    pool = createPool({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database,
      connectionLimit: 4 });
  });
  after(async () => {
    await pool?.end();
    await db?.stop();
  });

  it("creates MetaQ's table with the unique key the upsert needs, idempotently", async () => {
    const store = new MysqlOffsetStore({ pool });
    await store.createTable();
    await store.createTable();
    const [cols] = await pool.query<RowDataPacket[]>('SELECT COLUMN_NAME AS c, DATA_TYPE AS t FROM ' +
      'information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      [db.database, DEFAULT_OFFSET_TABLE]);
    assert.deepEqual(cols.map((r) => `${r.c}:${r.t}`),
      ['id:bigint', 'topic:varchar', 'partition:varchar', 'group_id:varchar', 'offset:bigint', 'msg_id:bigint']);
    await store.close();
  });

  it('round-trips offsets and 64-bit message ids exactly, and overwrites on a later commit', async () => {
    const store = new MysqlOffsetStore({ pool, table: table() });
    await store.createTable();
    const group = uniqueName('grp');
    const topic = uniqueName('topic');
    assert.equal(await store.load(group, topic, { brokerId: 0, partition: 0 }), undefined);
    const ids = [9223372036854775807n, 9007199254740993n, -1n, 0n];
    await store.commit(group, ids.map((id, p) => at(topic, 7, p, 1000 * p, id)));
    for (const [p, id] of ids.entries()) {
      assert.deepEqual(await store.load(group, topic, { brokerId: 7, partition: p }), at(topic, 7, p, 1000 * p, id));
    }
    await store.commit(group, [at(topic, 7, 1, 2 ** 40, 9223372036854775806n)]);
    assert.deepEqual(await store.load(group, topic, { brokerId: 7, partition: 1 }),
      at(topic, 7, 1, 2 ** 40, 9223372036854775806n));
    assert.equal((await store.load(group, topic, { brokerId: 7, partition: 0 }))?.offset, 0);
    await store.close();
  });

  it('commits many partitions in one transaction, over several statements', async () => {
    const name = table();
    const store = new MysqlOffsetStore({ pool, table: name });
    await store.createTable();
    const group = uniqueName('grp');
    const offsets = Array.from({ length: 1234 }, (_, i) => at(`topic-${i % 3}`, i % 5, i, i * 10, BigInt(i) << 40n));
    await store.commit(group, offsets);
    const [count] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${name} WHERE group_id = ?`, [group]);
    assert.equal(Number(count[0]?.n), 1234);
    for (const i of [0, 499, 500, 1233]) {
      const o = offsets[i] as CommittedOffset;
      assert.deepEqual(await store.load(group, o.topic, o.partition), o);
    }
    await store.close();
  });

  it('stores nothing of a commit that fails part way', async () => {
    const name = table();
    const store = new MysqlOffsetStore({ pool, table: name });
    await store.createTable();
    const group = uniqueName('grp');
    const offsets = Array.from({ length: 600 }, (_, i) => at('t', 0, i, i));
    // Row 550 sits in the second statement and is too long for the column (strict mode refuses it).
    offsets[550] = at('x'.repeat(300), 0, 550, 550);
    await assert.rejects(store.commit(group, offsets), StorageError);
    const [count] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${name}`);
    assert.equal(Number(count[0]?.n), 0, 'the first statement was rolled back');
    await store.close();
  });

  it('keeps the offsets of two groups apart', async () => {
    const store = new MysqlOffsetStore({ pool, table: table() });
    await store.createTable();
    const [a, b] = [uniqueName('grp-a'), uniqueName('grp-b')];
    await Promise.all([store.commit(a, [at('t', 0, 0, 11, 1n)]), store.commit(b, [at('t', 0, 0, 22, 2n)])]);
    assert.equal((await store.load(a, 't', { brokerId: 0, partition: 0 }))?.offset, 11);
    assert.equal((await store.load(b, 't', { brokerId: 0, partition: 0 }))?.msgId, 2n);
    await store.close();
  });

  it('finds committed offsets again from a new store with its own connection', async () => {
    const name = table();
    const connection = { host: db.host, port: db.port, user: db.user, password: db.password, database: db.database };
    const first = new MysqlOffsetStore({ connection, table: name });
    await first.createTable();
    await first.commit('g', [at('t', 1, 2, 345, 678n)]);
    await first.close();
    await assert.rejects(first.load('g', 't', { brokerId: 1, partition: 2 }), ShuttingDownError);
    const uri = `mysql://${db.user}:${encodeURIComponent(db.password)}@${db.host}:${db.port}/${db.database}`;
    const second = new MysqlOffsetStore({ connection: uri, table: name });
    assert.deepEqual(await second.load('g', 't', { brokerId: 1, partition: 2 }), at('t', 1, 2, 345, 678n));
    await second.close();
  });

  it("reads rows written by MetaQ's MysqlOffsetStorage (initOffset inserts msg_id -1)", async () => {
    const name = table();
    const store = new MysqlOffsetStore({ pool, table: name });
    await store.createTable();
    await pool.query(`INSERT INTO ${name} (topic,\`partition\`,group_id,\`offset\`,msg_id) VALUES(?,?,?,?,?)`,
      ['meta-test', '100-3', 'meta-grp', 4096, -1]);
    assert.deepEqual(await store.load('meta-grp', 'meta-test', { brokerId: 100, partition: 3 }),
      at('meta-test', 100, 3, 4096, -1n));
    await store.close();
    await pool.query('SELECT 1');
  });

  it('says how to create a missing table, and refuses a table name that is not an identifier', async () => {
    const store = new MysqlOffsetStore({ pool, table: 'no_such_table' });
    await assert.rejects(store.load('g', 't', { brokerId: 0, partition: 0 }),
      (e: unknown) => e instanceof ConfigError && /no_such_table.*createTable\(\)/.test(e.message));
    await store.close();
    assert.throws(() => new MysqlOffsetStore({ pool, table: 'x; DROP TABLE y' }), ConfigError);
  });
});
