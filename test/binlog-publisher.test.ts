import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createConnection, type Connection } from 'mysql2/promise';
import pino from 'pino';
import { lastValueFrom, toArray } from 'rxjs';
import {
  BinlogPublisher, BinlogServerCheckError, FilePositionStore, checkBinlogServer, parseEnvelope, type ChangeEnvelope,
} from '../connectors/binlog/index.js';
import { createClient, type MetaqClient } from '../sdk/index.js';
import { startMariaDb, type MariaDbServer } from './harness/mariadb.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('connectors/binlog publisher', () => {
  let db: MariaDbServer;
  let broker: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let client: MetaqClient;
  let conn: Connection;

  before(async () => {
    [db, broker, dir] = await Promise.all([
      startMariaDb({ extraArgs: ['--binlog-row-metadata=FULL'] }),
      startTestBroker({ 'system.numPartitions': '3' }),
      tempDir('metaq-binlog-'),
    ]);
    client = await createClient({ serverUrl: `meta://127.0.0.1:${broker.port}`, recoverDir: join(dir.path, 'recover'),
      offsetsFile: join(dir.path, 'offsets.json'), logger });
    conn = await createConnection({ host: db.host, port: db.port, user: db.user, password: db.password,
      database: db.database, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
  });
  after(async () => {
    await conn?.end();
    await client?.close();
    await Promise.all([db?.stop(), broker?.dispose()]);
    await dir?.remove();
  });

  function publisher(topic: string, posFile: string, tables: Record<string, string[] | true>): BinlogPublisher {
    return new BinlogPublisher({ client, topic, source: { host: db.host, port: db.port, user: db.user, password: db.password },
      tables, positionStore: new FilePositionStore(join(dir.path, posFile)), logger });
  }

  async function envelopes(topic: string): Promise<ChangeEnvelope[]> {
    const msgs = await lastValueFrom(client.browse(topic).pipe(toArray()));
    return msgs.map((m) => parseEnvelope(m.payload));
  }

  it('names every missing setting and grant at start', async () => {
    const root = await createConnection({ socketPath: db.socketPath, user: 'root', password: '' });
    try {
      await root.query("CREATE USER 'weak'@'%' IDENTIFIED BY 'weak'");
      await root.query('SET GLOBAL binlog_row_metadata = MINIMAL');
      const weak = await createConnection({ host: db.host, port: db.port, user: 'weak', password: 'weak' });
      try {
        await assert.rejects(checkBinlogServer(weak, ['shop']), (e: unknown) => {
          assert.ok(e instanceof BinlogServerCheckError);
          assert.deepEqual(e.missing.map((m) => m.split(' ').slice(0, 2).join(' ')), [
            'binlog_row_metadata is', 'grant REPLICATION', 'grant BINLOG', 'grant SELECT',
          ]);
          assert.match(e.message, /set binlog_row_metadata=FULL/);
          return true;
        });
      } finally {
        await weak.end();
      }
    } finally {
      await root.query('SET GLOBAL binlog_row_metadata = FULL');
      await root.end();
    }
    assert.deepEqual((await checkBinlogServer(conn, [db.database])).isMariaDb, true);
  });

  it('publishes exact values: DECIMAL, BIGINT past 2^53, JSON, DATETIME, BLOB, NULL and utf8mb4', async () => {
    const topic = uniqueName('binlog-values');
    await conn.query(`CREATE TABLE vals (id BIGINT UNSIGNED PRIMARY KEY, price DECIMAL(30,10), big BIGINT,
      doc JSON, at DATETIME(3), bin BLOB, txt VARCHAR(50) CHARACTER SET utf8mb4, nothing INT NULL)`);
    await conn.query('INSERT INTO vals VALUES (18446744073709551615, ?, 9007199254740993, ?, ?, ?, ?, NULL)',
      ['12345678901234567890.0123456789', '{"a":[1,2.5,"x"]}', '2026-11-21 10:11:12.345', Buffer.from([0, 255, 10]),
        'caf\u00e9 \u{1F600}']);
    await conn.query('UPDATE vals SET big = -9007199254740993 WHERE id = 18446744073709551615');
    await conn.query('DELETE FROM vals');
    const p = publisher(topic, 'values.json', { [db.database]: ['vals'] });
    await p.start();
    try {
      await waitFor(() => p.stats.acked >= 3 + 3, { what: 'the three DDL copies and three row changes acked' });
    } finally {
      await p.stop();
    }
    const all = await envelopes(topic);
    const rows = all.filter((e) => e.type !== 'ddl');
    assert.deepEqual(rows.map((e) => e.type), ['insert', 'update', 'delete']);
    const ins = rows[0]!;
    assert.deepEqual(ins.after, {
      id: '18446744073709551615', price: '12345678901234567890.0123456789', big: '9007199254740993',
      doc: '{"a":[1,2.5,"x"]}', at: '2026-11-21 10:11:12.345', bin: Buffer.from([0, 255, 10]).toString('base64'),
      txt: 'caf\u00e9 \u{1F600}', nothing: null,
    });
    assert.deepEqual(ins.base64Columns, ['bin']);
    assert.deepEqual(ins.primaryKeyColumns, ['id']);
    assert.deepEqual(ins.primaryKey, { id: '18446744073709551615' });
    assert.equal(rows[1]!.after!['big'], '-9007199254740993');
    assert.equal(rows[1]!.before!['big'], '9007199254740993');
    assert.equal(rows[2]!.after, null);
    assert.match(ins.gtid ?? '', /^0-1-\d+$/);
    assert.equal(ins.dedupeKey, `${ins.gtid}#0`);
    assert.match(ins.binlog.file, /^binlog\.\d+$/);
    // The CREATE TABLE reached each of the three partitions once, with one dedupe key.
    const ddl = all.filter((e) => e.type === 'ddl');
    assert.equal(ddl.length, 3);
    assert.equal(new Set(ddl.map((e) => e.dedupeKey)).size, 1);
    assert.match(ddl[0]!.ddl ?? '', /^CREATE TABLE vals/);
  });

  it('resumes after a stop at the saved position without skipping or repeating a transaction', async () => {
    const topic = uniqueName('binlog-resume');
    await conn.query('CREATE TABLE r (id INT PRIMARY KEY, v INT)');
    const p1 = publisher(topic, 'resume.json', { [db.database]: ['r'] });
    await p1.start();
    for (let i = 0; i < 50; i++) await conn.query('INSERT INTO r VALUES (?, ?)', [i, i]);
    await waitFor(() => p1.stats.acked >= 3 + 50, { what: 'the first 50 inserts acked' });
    await p1.stop();
    assert.equal(p1.stats.unsaved, 0, 'the position saved at stop covers everything sent');
    for (let i = 50; i < 100; i++) await conn.query('INSERT INTO r VALUES (?, ?)', [i, i]);
    const p2 = publisher(topic, 'resume.json', { [db.database]: ['r'] });
    await p2.start();
    try {
      await waitFor(() => p2.stats.acked >= 50, { what: 'the next 50 inserts acked' });
    } finally {
      await p2.stop();
    }
    const ids = (await envelopes(topic)).filter((e) => e.type === 'insert').map((e) => e.after!['id']);
    assert.deepEqual([...ids].sort((a, b) => Number(a) - Number(b)), Array.from({ length: 100 }, (_, i) => i));
  });

  it('resumes with a DDL statement as the first thing to publish', async () => {
    const topic = uniqueName('binlog-ddl-first');
    await conn.query('CREATE TABLE d (id INT PRIMARY KEY, v INT)');
    const p1 = publisher(topic, 'ddl-first.json', { [db.database]: ['d'] });
    await p1.start();
    await conn.query('INSERT INTO d VALUES (1, 1)');
    await waitFor(() => p1.stats.acked >= 3 + 1, { what: 'the CREATE TABLE copies and the insert acked' });
    await p1.stop();
    await conn.query("ALTER TABLE d ADD COLUMN note VARCHAR(10) DEFAULT 'x'");
    await conn.query("INSERT INTO d VALUES (2, 2, 'y')");
    const p2 = publisher(topic, 'ddl-first.json', { [db.database]: ['d'] });
    await p2.start();
    try {
      await waitFor(() => p2.stats.acked >= 3 + 1, { what: 'the ALTER copies and the insert acked' });
    } finally {
      await p2.stop();
    }
    const all = await envelopes(topic);
    assert.deepEqual(all.filter((e) => e.type === 'insert').map((e) => e.after), [{ id: 1, v: 1 }, { id: 2, v: 2, note: 'y' }]);
    assert.equal(all.filter((e) => e.type === 'ddl').length, 6);
  });
});
