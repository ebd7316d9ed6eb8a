/**
 * Binlog to replica as a library: a BinlogPublisher streams the row changes of one schema on a MySQL/MariaDB source
 * into a metaq topic, and a ReplicationSink applies that topic to a target server. The program then writes a few rows
 * on the source, waits until the target has the same rows, prints them and stops both.
 *
 * Needs: a broker (`npm start`, with numPartitions > 1 to see the keying at work), a source with
 * binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL and a user holding REPLICATION SLAVE,
 * REPLICATION CLIENT and SELECT, and a target with the same schema name.
 *
 * Run: SOURCE_URL=mysql://cdc:secret@127.0.0.1:3306/shop TARGET_URL=mysql://apply:secret@127.0.0.1:3307/shop \
 *      node --import tsx examples/binlog-replica.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, type ConnectionOptions, type RowDataPacket } from 'mysql2/promise';
import pino from 'pino';
import { createClient } from 'metaq';
import { BinlogPublisher, FilePositionStore, ReplicationSink } from 'metaq/connectors/binlog';

/** `mysql://user:password@host:port/database` as mysql2 options. */
function mysqlOptions(url: string): ConnectionOptions & { database: string } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password), database: u.pathname.slice(1) };
}

const source = mysqlOptions(process.env.SOURCE_URL ?? 'mysql://cdc:secret@127.0.0.1:3306/shop');
const target = mysqlOptions(process.env.TARGET_URL ?? 'mysql://apply:secret@127.0.0.1:3307/shop');
const topic = `shop-changes-${process.pid}`;
const table = `items_${process.pid}`;
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
const work = await mkdtemp(join(tmpdir(), 'binlog-replica-'));

const client = await createClient({ serverUrl: process.env.METAQ_URL ?? 'meta://127.0.0.1:8123',
  recoverDir: join(work, 'recover'), offsetsFile: join(work, 'offsets.json'), logger });
const src = await createConnection(source);
const dst = await createConnection(target);
// The table is created before the publisher starts, so it is created on the target by hand: the stream starts later.
const ddl = `CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2))`;
await src.query(ddl);
await dst.query(ddl);

const publisher = new BinlogPublisher({ client, topic, source, tables: { [source.database]: [table] },
  positionStore: new FilePositionStore(join(work, 'position.json')), startFrom: 'end', logger });
const sink = new ReplicationSink({ client, topic, group: `replica-${process.pid}`, target, logger });
await publisher.start();
await sink.start();

await src.query(`INSERT INTO ${table} VALUES (1, 'pen', 1.50), (2, 'ink', 7.25), (3, 'pad', 3.00)`);
await src.query(`UPDATE ${table} SET price = 1.75 WHERE id = 1`);
await src.query(`DELETE FROM ${table} WHERE id = 3`);
await src.query(`ALTER TABLE ${table} ADD COLUMN stock INT NOT NULL DEFAULT 0`);
await src.query(`UPDATE ${table} SET stock = 12 WHERE id = 2`);

const rows = async (c: typeof src): Promise<string> =>
  JSON.stringify((await c.query<RowDataPacket[]>(`SELECT * FROM ${table} ORDER BY id`))[0]);
const deadline = Date.now() + 20_000;
while ((await rows(dst)) !== (await rows(src))) {
  if (Date.now() > deadline) throw new Error(`the target did not catch up: ${await rows(dst)} vs ${await rows(src)}`);
  await new Promise((r) => setTimeout(r, 50));
}
console.log(`replica of ${table}: ${await rows(dst)}`);
console.log(`published ${publisher.stats.acked} messages, applied ${sink.stats.rowsApplied} rows and ${sink.stats.ddlApplied} DDL`);

await sink.stop();
await publisher.stop();
await src.query(`DROP TABLE ${table}`);
await dst.query(`DROP TABLE ${table}`);
await Promise.all([src.end(), dst.end()]);
await client.close();
await rm(work, { recursive: true, force: true });
