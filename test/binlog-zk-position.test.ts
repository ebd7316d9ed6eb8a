/**
 * The binlog position in ZooKeeper (real ZooKeeper, MariaDB and broker): a restart resumes from the znode, a second
 * publisher of the same name is refused (library and `metaq binlog publish --zk-position`), and a publisher that lost
 * its lock cannot overwrite its successor's position.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createConnection, type Connection } from 'mysql2/promise';
import pino from 'pino';
import { lastValueFrom, toArray } from 'rxjs';
import {
  BinlogPublisher, BinlogPublisherConflictError, parseEnvelope, ZkPositionStore,
} from '../connectors/binlog/index.js';
import { createClient, ZkSession, type MetaqClient } from '../sdk/index.js';
import { startMariaDb, type MariaDbServer } from './harness/mariadb.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from './harness/zookeeper.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const METAQ = fileURLToPath(new URL('../bin/metaq.js', import.meta.url));

describe('connectors/binlog position in ZooKeeper', () => {
  let zk: ZooKeeperServer;
  let db: MariaDbServer;
  let broker: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let client: MetaqClient;
  let conn: Connection;
  const sessions: ZkSession[] = [];

  const session = async (): Promise<ZkSession> => {
    const s = await ZkSession.open({ connect: zk.connectString, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    sessions.push(s);
    return s;
  };

  before(async () => {
    [zk, db, broker, dir] = await Promise.all([startZooKeeper(), startMariaDb({ extraArgs: ['--binlog-row-metadata=FULL'] }),
      startTestBroker({ 'system.numPartitions': '2' }), tempDir('metaq-binlog-zk-')]);
    client = await createClient({ serverUrl: `meta://127.0.0.1:${broker.port}`, recoverDir: join(dir.path, 'recover'),
      offsetsFile: join(dir.path, 'offsets.json'), logger });
    conn = await createConnection({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.database });
  });
  after(async () => {
    for (const s of sessions) await s.close();
    await conn?.end();
    await client?.close();
    await Promise.all([zk?.stop(), db?.stop(), broker?.dispose()]);
    await dir?.remove();
  });

  function publisher(topic: string, store: ZkPositionStore): BinlogPublisher {
    return new BinlogPublisher({ client, topic, source: { host: db.host, port: db.port, user: db.user, password: db.password },
      tables: { [db.database]: ['z'] }, positionStore: store, logger });
  }

  it('resumes from the znode after a restart and refuses a second live publisher of the same name', async () => {
    const topic = uniqueName('binlog-zk');
    const name = uniqueName('shop');
    await conn.query('CREATE TABLE z (id INT PRIMARY KEY)');
    const p1 = publisher(topic, new ZkPositionStore({ session: await session(), name, zkRoot: '/metaq-test' }));
    await p1.start();
    for (let i = 0; i < 20; i++) await conn.query('INSERT INTO z VALUES (?)', [i]);
    await waitFor(() => p1.stats.acked >= 2 + 20, { what: 'the CREATE TABLE copies and 20 inserts acked' });

    const second = publisher(topic, new ZkPositionStore({ session: await session(), name, zkRoot: '/metaq-test' }));
    await assert.rejects(second.start(), (e: unknown) => {
      assert.ok(e instanceof BinlogPublisherConflictError);
      assert.match(e.message, /another binlog publisher of this name is running/);
      return true;
    });
    await p1.stop();

    const watcher = await session();
    const saved = await watcher.getData(`/metaq-test/binlog/${name}/position`);
    assert.match(JSON.parse(saved!.data.toString()).gtidSet as string, /^0-1-\d+$/);
    assert.equal(await watcher.exists(`/metaq-test/binlog/${name}/owner`), undefined, 'the lock goes with stop()');

    for (let i = 20; i < 40; i++) await conn.query('INSERT INTO z VALUES (?)', [i]);
    const p2 = publisher(topic, new ZkPositionStore({ session: await session(), name, zkRoot: '/metaq-test' }));
    await p2.start();
    try {
      await waitFor(() => p2.stats.acked >= 20, { what: 'the next 20 inserts acked' });
    } finally {
      await p2.stop();
    }
    const ids = (await lastValueFrom(client.browse(topic).pipe(toArray()))).map((m) => parseEnvelope(m.payload))
      .filter((e) => e.type === 'insert').map((e) => Number(e.after!['id']));
    assert.deepEqual(ids.sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i), 'each insert once: no skip, no repeat');
  });

  it('fails the save of a publisher whose lock was taken over, keeping the successor\'s position', async () => {
    const name = uniqueName('fenced');
    const stale = new ZkPositionStore({ session: await session(), name });
    assert.equal(await stale.load(), undefined);
    await stale.save({ gtidSet: '0-1-10' });
    // The stale publisher's lock vanishes without it noticing (as when its session expired while it was frozen).
    const admin = await session();
    await admin.remove(stale.ownerPath);
    const successor = new ZkPositionStore({ session: await session(), name });
    assert.deepEqual(await successor.load(), { gtidSet: '0-1-10' });
    await successor.save({ gtidSet: '0-1-12' });
    await assert.rejects(stale.save({ gtidSet: '0-1-11' }), (e: unknown) => {
      assert.ok(e instanceof BinlogPublisherConflictError);
      assert.equal(e.zkCode, 'BAD_VERSION');
      return true;
    });
    assert.equal(JSON.parse((await admin.getData(successor.path))!.data.toString()).gtidSet, '0-1-12');
    await successor.close();
  });

  it('runs metaq binlog publish --zk-position and refuses a second process of the same name', async () => {
    const topic = uniqueName('binlog-zk-cli');
    const name = uniqueName('cli');
    const config = join(dir.path, `${name}.json`);
    await writeFile(config, JSON.stringify({
      client: { serverUrl: `meta://127.0.0.1:${broker.port}`, recoverDir: 'recover-cli', offsetsFile: 'offsets-cli.json' },
      topic,
      publish: { source: { host: db.host, port: db.port, user: db.user, password: db.password },
        tables: { [db.database]: ['z'] }, positionFile: 'unused.json', serverId: 4343 },
    }));
    const run = (): { exited: Promise<number | null>; output: () => string; kill: () => void } => {
      const child = spawn(process.execPath, [METAQ, 'binlog', 'publish', '-c', config, '--zk-position', name,
        '--zk', zk.connectString], { stdio: ['ignore', 'ignore', 'pipe'] });
      let out = '';
      child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
      return { exited: new Promise((r) => child.once('exit', (code) => r(code))), output: () => out, kill: () => child.kill('SIGTERM') };
    };
    const first = run();
    try {
      await waitFor(() => first.output().includes('binlog publish running'), { timeoutMs: 20_000, what: 'the first publisher to run' });
      const second = run();
      assert.equal(await second.exited, 1);
      assert.match(second.output(), /another binlog publisher of this name is running/);
      await conn.query('INSERT INTO z VALUES (100)');
      const watcher = await session();
      await waitFor(async () => (await watcher.getData(`/meta/binlog/${name}/position`)) !== undefined,
        { timeoutMs: 10_000, what: 'the position znode' });
    } finally {
      first.kill();
      assert.equal(await first.exited, 0);
    }
  });
});
