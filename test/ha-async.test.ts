/**
 * Async replication on a real ZooKeeper with in-process brokers: a slave (same brokerId, slaveId 1) keeps
 * byte-identical logs of its master, registers as a slave, refuses puts, serves a consumer group while the master
 * is stopped, resumes after a restart without duplicating, and takes the master's topic sections.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startBroker, type Broker } from '../broker/broker.js';
import { loadConfig } from '../broker/config/server-config.js';
import { createClient, type MetaqClient } from '../sdk/client/client.js';
import { encodePayload } from '../sdk/protocol/record.js';
import { ZkPaths } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../sdk/protocol/zk/zk-session.js';
import { startCluster, type Cluster, type ClusterBroker } from './harness/cluster.js';
import { bodyText, RawClient } from './harness/raw-client.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from './harness/zookeeper.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const PARTS = 3;
const SLAVE_SET = { 'system.brokerId': '0', 'system.slaveId': '1', 'system.slaveMaxDelayInMills': '100' };

/** Puts `n` messages round robin over the partitions (every third with an attribute); returns the values. */
async function produce(port: number, topic: string, n: number, tag: string): Promise<string[]> {
  const c = await RawClient.connect(port);
  const values: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const value = `${tag}-${i}-${'x'.repeat(i % 50)}`;
      const enc = encodePayload(Buffer.from(value), i % 3 === 0 ? `attr-${i}` : null);
      const r = await c.put(topic, i % PARTS, enc.data, { flag: enc.flag });
      assert.equal(r.type === 'result' ? r.code : 0, 200, bodyText(r));
      values.push(value);
    }
  } finally {
    await c.close();
  }
  return values;
}

/** Partition directories of a data dir: name → segment file name → bytes. */
async function logFiles(dataDir: string, topics: readonly string[]): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>();
  for (const name of (await readdir(dataDir)).sort()) {
    if (!topics.some((t) => name.startsWith(`${t}-`))) continue;
    const files = new Map<string, Buffer>();
    for (const f of (await readdir(join(dataDir, name))).filter((x) => x.endsWith('.meta')).sort()) {
      files.set(f, await readFile(join(dataDir, name, f)));
    }
    out.set(name, files);
  }
  return out;
}

/** True when the slave holds every master partition of `topics` up to the same end. */
function caughtUp(master: Broker, slave: Broker, topics: readonly string[]): boolean {
  for (const log of master.store.partitions()) {
    if (!topics.includes(log.topic)) continue;
    const s = slave.store.get(log.topic, log.partition);
    if (s === undefined || s.readableEnd !== log.readableEnd || s.startOffset !== log.startOffset) return false;
  }
  return true;
}

async function assertIdentical(master: ClusterBroker, slave: ClusterBroker, topics: readonly string[]): Promise<void> {
  await waitFor(() => caughtUp(master.broker!, slave.broker!, topics), { timeoutMs: 20_000, what: `slave to catch up on ${topics.join(',')}` });
  const m = await logFiles(master.dataDir, topics);
  const s = await logFiles(slave.dataDir, topics);
  assert.deepEqual([...s.keys()], [...m.keys()], 'same partition directories');
  for (const [dir, files] of m) {
    assert.deepEqual([...s.get(dir)!.keys()], [...files.keys()], `same segment files in ${dir}`);
    for (const [f, bytes] of files) assert.ok(bytes.equals(s.get(dir)!.get(f)!), `${dir}/${f} byte-identical`);
  }
}

describe('async replication: a slave broker replicates its master', () => {
  let cluster: Cluster;
  let master: ClusterBroker;
  let slave: ClusterBroker;
  let client: MetaqClient | undefined;
  let clientDir: { path: string; remove(): Promise<void> } | undefined;
  const topicA = uniqueName('ha-a');
  const topicB = uniqueName('ha-b');
  const topicC = uniqueName('ha-c');
  const topicD = uniqueName('ha-d');
  const paths = new ZkPaths('/meta');
  const zk = (): ZkSession => master.broker!.registry!.session;

  before(async () => {
    // Small segments, so that replication crosses rolls.
    cluster = await startCluster({ brokers: 1, numPartitions: PARTS, set: { 'system.maxSegmentSize': '2048' } });
    master = cluster.brokers[0]!;
  });

  after(async () => {
    await client?.close();
    await clientDir?.remove();
    await cluster?.stop();
  });

  it('keeps byte-identical logs, with messages produced before it started and a topic created later', async () => {
    await produce(master.port, topicA, 60, 'before');
    await produce(master.port, topicB, 20, 'before');
    slave = await cluster.addBroker(SLAVE_SET);
    await produce(master.port, topicA, 60, 'after');
    await produce(master.port, topicC, 25, 'later');
    await assertIdentical(master, slave, [topicA, topicB, topicC]);
    assert.ok(master.broker!.store.get(topicA, 0)!.segmentStarts().length > 1, 'the logs rolled');
  });

  it('registers as slave 1 in ZooKeeper, for consumers only (topics-sub, never topics-pub)', async () => {
    assert.equal((await zk().getData(paths.brokerSlave(0, 1)))?.data.toString(), slave.url);
    assert.ok(await zk().exists(paths.topicBroker('topics-sub', topicA, 0, 1)));
    assert.equal(await zk().exists(paths.topicBroker('topics-pub', topicA, 0, 1)), undefined);
    assert.ok(await zk().exists(paths.topicBroker('topics-pub', topicA, 0)), 'the master is offered to producers');
  });

  it('refuses a put with 403 (TCP and HTTP) and reports its replication state', async () => {
    const c = await RawClient.connect(slave.port);
    try {
      const r = await c.put(topicA, 0, 'not here');
      assert.equal(r.type === 'result' ? r.code : 0, 403);
      assert.match(bodyText(r), /slave 1 of broker 0 .*takes no puts/);
      // The HTTP gateway's puts answer the same code as the TCP put.
      const base = `http://127.0.0.1:${slave.broker!.httpPort}`;
      const http = await fetch(`${base}/put/0?topic=${topicA}&partition=0&flag=0&length=3`, { method: 'POST', body: 'abc' });
      assert.equal(http.status, 403);
      assert.match(await http.text(), /takes no puts/);
      const json = await fetch(`${base}/api/topics/${topicA}/messages`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'abc' }) });
      assert.equal(json.status, 403);
      const stats = await c.stats('replication');
      assert.match(stats, /master_url meta:\/\/127\.0\.0\.1:\d+/);
      assert.match(stats, /master_connected true/);
      await waitFor(async () => /lag_bytes 0\r\n/.test(await c.stats('replication')), { timeoutMs: 10_000, what: 'lag 0' });
    } finally {
      await c.close();
    }
  });

  it('serves a consumer group while the master is stopped and hands back to the master, losing nothing', async () => {
    const first = await produce(master.port, topicD, 30, 'd1');
    await assertIdentical(master, slave, [topicD]);
    await master.stop();
    clientDir = await tempDir('metaq-ha-client-');
    client = await createClient({ zkConnect: cluster.zkConnect, zkSessionTimeoutMs: 4000, recoverDir: clientDir.path, logger });
    const consumer = client.consumer({ group: uniqueName('ha-group'), commitIntervalMs: 200, rebalanceBackoffMs: 200,
      maxFetchDelayMs: 200 });
    const got = new Map<string, number>();
    consumer.subscribe(topicD, (m) => { const v = m.value.toString(); got.set(v, (got.get(v) ?? 0) + 1); });
    await waitFor(() => first.every((v) => got.has(v)), { timeoutMs: 30_000, what: 'messages read from the slave' });
    await master.start();
    const second = await produce(master.port, topicD, 30, 'd2');
    await waitFor(() => second.every((v) => got.has(v)), { timeoutMs: 30_000, what: 'messages read from the master again' });
    assert.deepEqual([...first, ...second].filter((v) => !got.has(v)), [], 'nothing lost');
    await consumer.close();
    await assertIdentical(master, slave, [topicA, topicD]);
  });

  it('resumes from its local end after a restart without duplicating', async () => {
    await slave.stop();
    await produce(master.port, topicA, 40, 'while-down');
    await slave.start();
    await produce(master.port, topicA, 10, 'after-restart');
    await assertIdentical(master, slave, [topicA, topicB, topicC, topicD]);
  });
});

describe('async replication: autoSyncMasterConfig', () => {
  let zkServer: ZooKeeperServer;
  const brokers: Broker[] = [];
  const dirs: { remove(): Promise<void> }[] = [];

  before(async () => { zkServer = await startZooKeeper(); });
  after(async () => {
    for (const b of brokers.reverse()) await b.close();
    await zkServer?.stop();
    for (const d of dirs) await d.remove();
  });

  async function brokerFromFile(ini: string): Promise<{ broker: Broker; file: string }> {
    const dir = await tempDir('metaq-ha-conf-');
    dirs.push(dir);
    const file = join(dir.path, 'server.ini');
    await writeFile(file, ini.replaceAll('@DATA@', join(dir.path, 'data')).replaceAll('@ZK@', zkServer.connectString));
    const broker = await startBroker(await loadConfig(file), { logger });
    brokers.push(broker);
    return { broker, file };
  }

  const system = (extra: string): string => `[system]\nbrokerId=0\nhostName=127.0.0.1\nserverPort=0\ndashboardHttpPort=0\n` +
    `dataPath=@DATA@\nnumPartitions=2\nunflushThreshold=0\n${extra}\n[zookeeper]\nzk.zkEnable=true\nzk.zkConnect=@ZK@\n` +
    'zk.zkSyncTimeMs=0\nzk.zkSessionTimeoutMs=4000\n';

  it("takes the master's topic sections, keeps its own [system], and replicates the master's topics", async () => {
    const { broker: m } = await brokerFromFile(`${system('')}[topic=orders]\nnumPartitions=5\n[topic=audit]\n`);
    const { broker: s, file } = await brokerFromFile(`${system('slaveId=2\nautoSyncMasterConfig=true')}[topic=unrelated]\n`);
    const c = await RawClient.connect(m.port);
    try {
      for (let p = 0; p < 5; p++) assert.equal((await c.put('orders', p, `o${p}`)).type, 'result');
    } finally {
      await c.close();
    }
    await waitFor(() => [0, 1, 2, 3, 4].every((p) => s.store.get('orders', p)?.readableEnd === m.store.get('orders', p)!.readableEnd),
      { timeoutMs: 20_000, what: 'orders replicated on 5 partitions' });
    const text = await readFile(file, 'utf8');
    assert.match(text, /\[topic=orders\]\s+numPartitions=5/);
    assert.match(text, /\[topic=audit\]/);
    assert.doesNotMatch(text, /\[topic=unrelated\]/);
    assert.match(text, /slaveId=2/);
    assert.equal((await loadConfig(file)).system.slaveId, 2, 'still a slave after a restart');
  });

  it('stops trying to take the config of an unreachable master once it is closed', async () => {
    // A "master" that drops every connection: the slave's config sync fails and is retried until the slave stops.
    let accepted = 0;
    const fake = createServer((socket) => { accepted++; socket.destroy(); });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const admin = await ZkSession.open({ connect: zkServer.connectString, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    try {
      const root = new ZkPaths('/unreachable');
      await admin.ensurePath(root.brokerIdDir(0));
      await admin.createEphemeral(root.brokerMaster(0), `meta://127.0.0.1:${(fake.address() as AddressInfo).port}`);
      const { broker: s } = await brokerFromFile(`${system('slaveId=1\nautoSyncMasterConfig=true')}zk.zkRoot=/unreachable\n[topic=local]\n`);
      await waitFor(() => accepted > 0, { timeoutMs: 10_000, what: 'the slave asking its master for its config' });
      await s.close();
      const atClose = accepted;
      // Not a wait for something: the window in which a retry loop left running would connect hundreds of times.
      await delay(500);
      assert.ok(accepted - atClose <= 1, `${accepted - atClose} connections to the master after the slave closed`);
    } finally {
      await admin.close();
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});
