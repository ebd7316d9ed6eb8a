/**
 * Binlog to replica, end to end: a random seeded workload on a real MariaDB source (inserts, updates, deletes,
 * multi-row transactions, rollbacks, an ADD COLUMN), the publisher as a child process (`metaq binlog publish`)
 * SIGKILLed and restarted several times mid-stream, a real broker, and the replication sink applying the topic to a
 * second MariaDB. At the end every row of the target equals the source, no change is missing from the topic, and the
 * changes of each row are in binlog order in the broker. At each kill, what the broker holds beyond the saved position
 * (what the next publisher publishes again) is at most `maxInFlight` plus one transaction: a saved position that
 * stalls while publishing goes on fails it. Replay with BINLOG_E2E_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createConnection, type Connection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import pino from 'pino';
import { lastValueFrom, toArray } from 'rxjs';
import { parseEnvelope, ReplicationSink, type ChangeEnvelope } from '../connectors/binlog/index.js';
import { createClient, type MetaqClient } from '../sdk/index.js';
import { startMariaDb, type MariaDbServer } from './harness/mariadb.js';
import { seededRandom, seedFrom } from './reliability/history.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const METAQ = fileURLToPath(new URL('../bin/metaq.js', import.meta.url));
const OPS = 1200;
const RESTARTS = 4;
const TOPIC = 'binlog-e2e';
const MAX_IN_FLIGHT = 200;
/** The workload's largest transaction: 6 single-row statements (a DDL statement is 4 messages, one per partition). */
const LARGEST_TRANSACTION = 6;

/** The publisher as a child process; resolves once it logged that it runs. */
async function spawnPublisher(config: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [METAQ, 'binlog', 'publish', '-c', config, '--log-level', 'info'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (b: Buffer) => { out = (out + b.toString()).slice(-20_000); });
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`publisher exited ${child.exitCode}: ${out}`);
    return out.includes('binlog publish running');
  }, { timeoutMs: 20_000, what: 'the publisher to run' });
  return child;
}

async function killNow(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** The GTID sequence number saved in the position file (one domain, one server); 0 before the first save. */
async function savedSequence(positionFile: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(positionFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  const { gtidSet } = JSON.parse(text) as { gtidSet?: string };
  const m = /^0-\d+-(\d+)$/.exec(gtidSet ?? '');
  assert.ok(m !== null, `a single-domain MariaDB GTID position, not ${gtidSet}`);
  return Number(m[1]);
}

function sequenceOf(e: ChangeEnvelope): number {
  return Number(e.gtid!.split('-')[2]);
}

async function envelopes(client: MetaqClient): Promise<{ e: ChangeEnvelope; partition: number; offset: number }[]> {
  const msgs = await lastValueFrom(client.browse(TOPIC).pipe(toArray()));
  return msgs.map((m) => ({ e: parseEnvelope(m.payload), partition: m.partition.partition, offset: m.offset }));
}

async function dump(conn: Connection, table: string, order: string): Promise<string[]> {
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT * FROM ${table} ORDER BY ${order}`);
  return rows.map((r) => JSON.stringify(Object.entries(r).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : v])));
}

describe('binlog publisher + replication sink end to end', () => {
  let source: MariaDbServer;
  let target: MariaDbServer;
  let broker: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let client: MetaqClient;
  let src: Connection;
  let dst: Connection;
  let publisher: ChildProcess | undefined;
  let sink: ReplicationSink | undefined;

  before(async () => {
    [source, target, broker, dir] = await Promise.all([
      startMariaDb({ extraArgs: ['--binlog-row-metadata=FULL'] }), startMariaDb(),
      startTestBroker({ 'system.numPartitions': '4' }), tempDir('metaq-binlog-e2e-'),
    ]);
    client = await createClient({ serverUrl: `meta://127.0.0.1:${broker.port}`, recoverDir: join(dir.path, 'recover'),
      offsetsFile: join(dir.path, 'offsets.json'), logger });
    const opts = { supportBigNumbers: true, bigNumberStrings: true, dateStrings: true } as const;
    src = await createConnection({ host: source.host, port: source.port, user: source.user, password: source.password,
      database: source.database, ...opts });
    dst = await createConnection({ host: target.host, port: target.port, user: target.user, password: target.password,
      database: target.database, ...opts });
  });
  after(async () => {
    if (publisher !== undefined) await killNow(publisher);
    await sink?.stop();
    await src?.end();
    await dst?.end();
    await client?.close();
    await Promise.all([source?.stop(), target?.stop(), broker?.dispose()]);
    await dir?.remove();
  });

  it('makes the target equal to the source with the publisher killed mid-stream, losing nothing, in order per row',
    { timeout: 120_000 }, async () => {
      const seed = seedFrom('BINLOG_E2E_SEED');
      console.log(`binlog e2e seed ${seed} (replay: BINLOG_E2E_SEED=${seed})`);
      const rnd = seededRandom(seed);
      await src.query(`CREATE TABLE items (id INT PRIMARY KEY, qty INT NOT NULL, price DECIMAL(14,4),
        name VARCHAR(40) CHARACTER SET utf8mb4, data BLOB)`);
      await src.query('CREATE TABLE accounts (a INT, b VARCHAR(8), bal BIGINT, PRIMARY KEY (a, b))');
      const config = join(dir.path, 'binlog.json');
      const positionFile = join(dir.path, 'position.json');
      /** Per kill: messages in the broker beyond the saved position. */
      const beyondSaved: number[] = [];
      await writeFile(config, JSON.stringify({
        client: { serverUrl: `meta://127.0.0.1:${broker.port}`, recoverDir: 'recover-pub', offsetsFile: 'offsets-pub.json' },
        topic: TOPIC,
        publish: { source: { host: source.host, port: source.port, user: source.user, password: source.password },
          tables: { [source.database]: ['items', 'accounts'] }, positionFile: 'position.json', maxInFlight: MAX_IN_FLIGHT },
      }));
      publisher = await spawnPublisher(config);
      sink = new ReplicationSink({ client, topic: TOPIC, group: 'e2e-replica', logger, retryDelayMs: 50,
        target: { host: target.host, port: target.port, user: target.user, password: target.password, database: target.database } });
      await sink.start();

      const ids = new Set<number>();
      const accounts = new Set<string>();
      let nextId = 1;
      let changes = 0;
      let restarts = 0;
      let altered = false;
      const tables = [['items', 'id'], ['accounts', 'a, b']] as const;
      const pick = <T>(s: Set<T>): T | undefined => [...s][rnd.int(0, s.size - 1)];
      /** Prints each row that differs with every change of it in the topic, in partition order. */
      const explainDifferences = async (): Promise<void> => {
        const msgs = await envelopes(client);
        for (const [t, order] of tables) {
          const [a, b] = [await dump(src, t, order), await dump(dst, t, order)];
          const inA = new Set(a);
          const inB = new Set(b);
          for (const row of [...a.filter((x) => !inB.has(x)), ...b.filter((x) => !inA.has(x))]) {
            const cells = new Map(JSON.parse(row) as [string, unknown][]);
            const history = msgs.filter(({ e }) => e.table === t &&
              e.primaryKeyColumns.every((c) => String(e.primaryKey?.[c]) === String(cells.get(c))));
            console.log(`differs in ${t} (${inA.has(row) ? 'source' : 'target'} only): ${row}\n` + history.map(({ e, partition, offset }) =>
              `  p${partition}@${offset} ${e.type} ${e.dedupeKey} ${JSON.stringify(e.after)}`).join('\n'));
          }
        }
      };
      /** One random single-row statement; returns the rows it changed (counted only once committed). */
      const statement = async (): Promise<{ n: number; undo: () => void; redo: () => void }> => {
        const r = rnd.next();
        const noop = { n: 0, undo: () => undefined, redo: () => undefined };
        if (r < 0.35 || ids.size < 5) {
          const id = nextId++;
          const bytes = Buffer.from(Array.from({ length: rnd.int(0, 6) }, () => rnd.int(0, 255)));
          await src.query('INSERT INTO items (id, qty, price, name, data) VALUES (?, ?, ?, ?, ?)',
            [id, rnd.int(0, 100), `${rnd.int(0, 99999)}.${rnd.int(1000, 9999)}`, `n\u00e9-${id}-\u{1F600}`, bytes]);
          ids.add(id);
          return { n: 1, undo: () => ids.delete(id), redo: () => ids.add(id) };
        }
        if (r < 0.65) {
          const id = pick(ids)!;
          const set = altered ? ', note = CONCAT(\'u\', qty)' : '';
          const [res] = await src.query<ResultSetHeader>(`UPDATE items SET qty = qty + 1, name = ?${set} WHERE id = ?`,
            [`u${rnd.int(0, 1e6)}`, id]);
          return { ...noop, n: res.affectedRows };
        }
        if (r < 0.8) {
          const id = pick(ids)!;
          const [res] = await src.query<ResultSetHeader>('DELETE FROM items WHERE id = ?', [id]);
          ids.delete(id);
          return { n: res.affectedRows, undo: () => ids.add(id), redo: () => ids.delete(id) };
        }
        if (r < 0.9 || accounts.size === 0) {
          const a = rnd.int(1, 30);
          const b = `k${rnd.int(0, 3)}`;
          const [res] = await src.query<ResultSetHeader>(
            'INSERT INTO accounts VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE bal = bal + VALUES(bal) + 1',
            [a, b, String(2n ** 60n + BigInt(rnd.int(0, 1000)))]);
          const had = accounts.has(`${a}/${b}`);
          accounts.add(`${a}/${b}`);
          return { n: res.affectedRows > 0 ? 1 : 0, undo: () => { if (!had) accounts.delete(`${a}/${b}`); }, redo: () => accounts.add(`${a}/${b}`) };
        }
        const key = pick(accounts)!;
        const [a, b] = key.split('/');
        const [res] = await src.query<ResultSetHeader>('DELETE FROM accounts WHERE a = ? AND b = ?', [a, b]);
        accounts.delete(key);
        return { n: res.affectedRows, undo: () => accounts.add(key), redo: () => accounts.delete(key) };
      };

      for (let op = 0; op < OPS; op++) {
        if (op > 0 && op % Math.floor(OPS / (RESTARTS + 1)) === 0 && restarts < RESTARTS) {
          await killNow(publisher);
          const saved = await savedSequence(positionFile);
          const beyond = new Set((await envelopes(client)).filter((m) => sequenceOf(m.e) > saved)
            .map((m) => `${m.e.dedupeKey}@${m.partition}`));
          beyondSaved.push(beyond.size);
          restarts++;
          publisher = await spawnPublisher(config);
        }
        if (op === Math.floor(OPS / 2)) {
          await src.query("ALTER TABLE items ADD COLUMN note VARCHAR(20) CHARACTER SET utf8mb4 DEFAULT 'x'");
          altered = true;
        }
        const kind = rnd.next();
        if (kind < 0.75) {
          changes += (await statement()).n;
          continue;
        }
        await src.query('BEGIN');
        const done = [];
        for (let i = rnd.int(2, 6); i > 0; i--) done.push(await statement());
        if (kind < 0.9) {
          await src.query('COMMIT');
          changes += done.reduce((s, d) => s + d.n, 0);
        } else {
          await src.query('ROLLBACK');
          for (const d of done.reverse()) d.undo();
        }
      }

      let differences = -1;
      await waitFor(async () => {
        differences = 0;
        for (const [t, order] of tables) {
          const [a, b] = [await dump(src, t, order), await dump(dst, t, order)];
          const other = new Set(b);
          differences += a.filter((x) => !other.has(x)).length + Math.max(0, b.length - a.length);
        }
        return differences === 0;
      }, { timeoutMs: 30_000, intervalMs: 200, what: 'the target to equal the source' }).catch(async (e: unknown) => {
        await explainDifferences();
        throw e;
      });

      const all = (await envelopes(client)).map((m) => m.e);
      const rowChanges = all.filter((e) => e.type !== 'ddl');
      const distinct = new Map<string, ChangeEnvelope>();
      for (const e of rowChanges) if (!distinct.has(e.dedupeKey)) distinct.set(e.dedupeKey, e);
      // Per row, in broker order, the first copy of each change comes in binlog order (GTID sequence, then row index).
      let disorder = 0;
      const lastByRow = new Map<string, [number, number]>();
      const seen = new Set<string>();
      for (const e of rowChanges) {
        if (seen.has(e.dedupeKey)) continue;
        seen.add(e.dedupeKey);
        const row = `${e.table}:${JSON.stringify(e.primaryKey)}`;
        const at: [number, number] = [Number(e.gtid!.split('-')[2]), e.rowIndex];
        const last = lastByRow.get(row);
        if (last !== undefined && (at[0] < last[0] || (at[0] === last[0] && at[1] <= last[1]))) disorder++;
        lastByRow.set(row, at);
      }
      const [[{ n: srcRows }]] = await src.query<RowDataPacket[]>(
        'SELECT (SELECT COUNT(*) FROM items) + (SELECT COUNT(*) FROM accounts) AS n') as unknown as [[{ n: number }]];
      console.log(`binlog e2e: ops ${OPS}, row changes committed ${changes}, published ${rowChanges.length} ` +
        `(distinct ${distinct.size}, re-published ${rowChanges.length - distinct.size}), source rows ${srcRows}, ` +
        `restarts ${restarts}, beyond the saved position at each kill ${beyondSaved.join('/')} ` +
        `(bound ${MAX_IN_FLIGHT + LARGEST_TRANSACTION}), lost ${changes - distinct.size}, disorder ${disorder}, differences ${differences}, ` +
        `DDL applied ${sink.stats.ddlApplied} skipped ${sink.stats.ddlSkipped}`);
      assert.equal(restarts, RESTARTS);
      assert.equal(differences, 0);
      assert.equal(distinct.size, changes, 'every committed row change is in the topic exactly once by dedupe key');
      assert.equal(disorder, 0);
      for (const n of beyondSaved) {
        assert.ok(n <= MAX_IN_FLIGHT + LARGEST_TRANSACTION, `at a kill, ${n} messages were beyond the saved position ` +
          `(at most maxInFlight ${MAX_IN_FLIGHT} + one transaction): the position lagged the acknowledgements`);
      }
      const [cols] = await dst.query<RowDataPacket[]>('SHOW COLUMNS FROM items LIKE \'note\'');
      assert.equal(cols.length, 1, 'the ADD COLUMN reached the target');
    });
});
