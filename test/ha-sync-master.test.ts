/**
 * Sync replication, the master side (broker/ha/sync-master.ts), and in-process promotion (broker/ha/promotion.ts),
 * on a real ZooKeeper with in-process brokers. Each test uses its own brokerId, so the pairs do not see each other:
 *
 * - 0 (sync) and its slave: every ack arrives only once the slave holds the record; 1 (async) and its slave, whose
 *   fetching is paused: acks arrive before the slave's copy (the negative control of the same check).
 * - 2 (sync), no slave: puts refused before anything is appended.
 * - 3 (sync, failure threshold 3) and its slave: stopping the slave withdraws the master from producers until the
 *   restarted slave has caught up.
 * - 4 (async) and its slave: the slave is promoted in process and repairs a consumer offset by message id.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { Broker } from '../broker/broker.js';
import type { Response } from '../sdk/protocol/commands.js';
import { encodePut, encodeSync } from '../sdk/protocol/encode.js';
import { crc32Masked, RECORD_HEADER_SIZE } from '../sdk/protocol/record.js';
import { ZkPaths } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../sdk/protocol/zk/zk-session.js';
import { startCluster, type Cluster, type ClusterBroker } from './harness/cluster.js';
import { bodyText, RawClient } from './harness/raw-client.js';
import { uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { recordsOf } from './harness/log-records.js';

const PARTS = 4;
const paths = new ZkPaths('/meta');

/** One record of a log. */

/** What the acks of {@link putAndWatch} found about the slave at the moment each arrived. */
interface AckWatch {
  readonly acked: number;
  /** Acks that arrived while the slave's log did not reach the record's end yet. */
  readonly beforeSlave: string[];
  /** Acks that arrived while the slave's readable (in group commit: fsynced) end did not reach it. */
  readonly beforeSlaveDurable: string[];
}

function code(r: Response): number {
  return r.type === 'result' ? r.code : -1;
}

function bodySize(i: number): number {
  return 20 + ((i * 37) % 900);
}

/**
 * Puts `perPartition` messages on each of the partitions over two pipelined connections (`window` in flight each)
 * and, synchronously in the socket's data event that delivers each ack, compares the acked record's end with the
 * slave's log: no other event can run between the ack's arrival and the check.
 */
async function putAndWatch(port: number, slave: Broker, topic: string, perPartition: number, window = 16):
Promise<AckWatch> {
  const clients = [await RawClient.connect(port), await RawClient.connect(port)];
  const sizeOf = new Map<string, number>();
  const beforeSlave: string[] = [];
  const beforeSlaveDurable: string[] = [];
  let acked = 0;
  for (const c of clients) {
    let seen = 0;
    // Registered after RawClient's own listener: `received` already holds this chunk's replies.
    c.socket.on('data', () => {
      for (; seen < c.received.length; seen++) {
        const r = c.received[seen]!;
        if (code(r) !== 200) continue;
        const [, p, off] = bodyText(r).split(' ');
        const size = sizeOf.get(`${c.socket.localPort}/${r.opaque}`);
        if (size === undefined) continue;
        acked++;
        const end = Number(off) + RECORD_HEADER_SIZE + size;
        const log = slave.store.get(topic, Number(p));
        if ((log?.endOffset ?? -1) < end) beforeSlave.push(`${topic}-${p}@${off}: slave end ${log?.endOffset ?? 'none'} < ${end}`);
        if ((log?.readableEnd ?? -1) < end) beforeSlaveDurable.push(`${topic}-${p}@${off}: slave readable ${log?.readableEnd ?? 'none'} < ${end}`);
      }
    });
  }
  try {
    await Promise.all(clients.map(async (c, ci) => {
      const inFlight = new Set<Promise<void>>();
      for (let i = ci; i < perPartition * PARTS; i += clients.length) {
        const partition = i % PARTS;
        const data = Buffer.alloc(bodySize(i), `${topic}-${i}-`);
        const opaque = c.nextOpaque();
        sizeOf.set(`${c.socket.localPort}/${opaque}`, data.length);
        const p = c.request(encodePut({ topic, partition, flag: 0, checksum: crc32Masked(data), opaque, body: data,
          transactionKey: null }), opaque, 30_000).then((r) => {
          assert.equal(code(r), 200, bodyText(r));
          inFlight.delete(p);
        });
        inFlight.add(p);
        if (inFlight.size >= window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    }));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return { acked, beforeSlave, beforeSlaveDurable };
}


/** Puts one message per partition and more on partition 0; returns nothing, asserts 200. */
async function seed(port: number, topic: string, n: number): Promise<void> {
  const c = await RawClient.connect(port);
  try {
    for (let i = 0; i < n; i++) {
      const r = await c.put(topic, i % PARTS, `seed-${i}-${'s'.repeat(i % 60)}`);
      assert.equal(r.code, 200, bodyText(r));
    }
  } finally {
    await c.close();
  }
}

/** True when the slave holds every partition of `topic` the master holds, up to the same readable end. */
function caughtUp(master: Broker, slave: Broker, topic: string): boolean {
  for (const log of master.store.partitions()) {
    if (log.topic !== topic) continue;
    const s = slave.store.get(topic, log.partition);
    if (s === undefined || s.readableEnd !== log.readableEnd || s.endOffset !== log.endOffset) return false;
  }
  return true;
}

async function assertSameLogs(a: ClusterBroker, b: ClusterBroker, topic: string): Promise<void> {
  const files = async (dataDir: string): Promise<Map<string, Buffer>> => {
    const out = new Map<string, Buffer>();
    for (const dir of (await readdir(dataDir)).filter((d) => d.startsWith(`${topic}-`)).sort()) {
      for (const f of (await readdir(join(dataDir, dir))).filter((x) => x.endsWith('.meta')).sort()) {
        out.set(`${dir}/${f}`, await readFile(join(dataDir, dir, f)));
      }
    }
    return out;
  };
  const x = await files(a.dataDir);
  const y = await files(b.dataDir);
  assert.ok(x.size >= PARTS, `${x.size} segment files`);
  assert.deepEqual([...y.keys()], [...x.keys()], 'same segment files');
  for (const [name, bytes] of x) assert.ok(bytes.equals(y.get(name)!), `${name} byte-identical`);
}

async function stats(port: number, item: string): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    return await c.stats(item);
  } finally {
    await c.close();
  }
}

async function promoteOverHttp(b: Broker): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/ha/promote`, { method: 'POST' });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

describe('sync replication, master side, and in-process promotion', () => {
  let cluster: Cluster;
  let zk: ZkSession;

  before(async () => {
    cluster = await startCluster({ brokers: 0, numPartitions: PARTS, set: { 'system.maxSegmentSize': '65536' } });
    zk = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 10_000, connectTimeoutMs: 10_000,
      logger: pino({ level: 'silent' }) });
  });

  after(async () => {
    await zk?.close();
    await cluster?.stop();
  });

  it('acknowledges a put only once the slave holds it, for concurrent puts on several partitions', async () => {
    const topic = uniqueName('sync-ack');
    const master = await cluster.addBroker({ 'system.brokerId': '0', 'system.syncReplication': 'true' });
    const slave = await cluster.addBroker({ 'system.brokerId': '0', 'system.slaveId': '1' });
    try {
      await waitFor(async () => (await stats(master.port, 'replication')).includes(`sync_slave ${slave.url}\r\n`),
        { what: 'the master to find its slave' });
      const watch = await putAndWatch(master.port, slave.broker!, topic, 150);
      assert.equal(watch.acked, 150 * PARTS);
      assert.deepEqual(watch.beforeSlave.slice(0, 5), [], `${watch.beforeSlave.length} acks before the slave's copy`);
      assert.deepEqual(watch.beforeSlaveDurable.slice(0, 5), [],
        `${watch.beforeSlaveDurable.length} acks before the slave's readable (fsynced) end`);
      const s = await stats(master.port, 'replication');
      assert.match(s, new RegExp(`sync_forwarded ${150 * PARTS}\\r\\n`));
      assert.match(s, /sync_failed 0\r\n/);
      await waitFor(() => caughtUp(master.broker!, slave.broker!, topic), { what: 'the slave\'s readable ends' });
      await assertSameLogs(master, slave, topic);
    } finally {
      await slave.stop();
      await master.stop();
    }
  });

  it('lets acks of an async master precede the slave\'s copy when the slave\'s fetching is paused (control)', async () => {
    const topic = uniqueName('async-ack');
    const master = await cluster.addBroker({ 'system.brokerId': '1' });
    await seed(master.port, topic, PARTS);
    // A push keeps a partition's fetching paused for slaveMaxDelayInMills (partition-replicator.ts).
    const slave = await cluster.addBroker({ 'system.brokerId': '1', 'system.slaveId': '1',
      'system.slaveMaxDelayInMills': '600000' });
    const toSlave = await RawClient.connect(slave.port);
    try {
      await waitFor(() => caughtUp(master.broker!, slave.broker!, topic), { what: 'the slave to catch up' });
      for (let p = 0; p < PARTS; p++) {
        const rec = (await recordsOf(master.broker!.store.get(topic, p)!)).at(-1)!;
        const opaque = toSlave.nextOpaque();
        const r = await toSlave.request(encodeSync({ topic, partition: p, flag: rec.flag, msgId: rec.msgId,
          checksum: rec.crc, offset: rec.offset, opaque, body: rec.data }), opaque);
        assert.equal(code(r), 200, bodyText(r));
      }
      // The fetches parked at the master before the pushes return with these; then fetching sleeps.
      await seed(master.port, topic, PARTS);
      await waitFor(() => caughtUp(master.broker!, slave.broker!, topic), { what: 'the parked fetches answered' });
      const perPartition = 20;
      const watch = await putAndWatch(master.port, slave.broker!, topic, perPartition);
      assert.equal(watch.acked, perPartition * PARTS);
      assert.equal(watch.beforeSlave.length, watch.acked, 'every ack before the slave\'s copy');
    } finally {
      await toSlave.close();
      await slave.stop();
      await master.stop();
    }
  });

  it('refuses puts with 500 naming why while no slave is registered, appending nothing', async () => {
    const topic = uniqueName('sync-noslave');
    const master = await cluster.addBroker({ 'system.brokerId': '2', 'system.syncReplication': 'true' });
    const c = await RawClient.connect(master.port);
    try {
      for (let p = 0; p < PARTS; p++) {
        const r = await c.put(topic, p, `refused-${p}`);
        assert.equal(r.code, 500);
        assert.match(bodyText(r), /sync replication: no slave of broker 2 is connected, so no put can be stored on both/);
        assert.equal(master.broker!.store.get(topic, p)?.endOffset ?? 0, 0, `nothing appended to ${topic}-${p}`);
      }
      assert.match(await c.stats('replication'), /sync_slave none\r\n/);
      assert.match(await c.stats(), new RegExp(`put_failed ${PARTS}\\r\\n`));
    } finally {
      await c.close();
      await master.stop();
    }
  });

  it('withdraws the master from producers after the failure threshold and restores it once the slave caught up', async () => {
    const topic = uniqueName('sync-threshold');
    const master = await cluster.addBroker({ 'system.brokerId': '3', 'system.syncReplication': 'true',
      'system.slaveContinuousFailureThreshold': '3', 'system.checkSlaveIntervalInMills': '50' });
    const slave = await cluster.addBroker({ 'system.brokerId': '3', 'system.slaveId': '1' });
    const pub = (p: 'topics-pub' | 'topics-sub'): Promise<unknown> => zk.exists(paths.topicBroker(p, topic, 3));
    const c = await RawClient.connect(master.port);
    try {
      await waitFor(async () => (await c.stats('replication')).includes(`sync_slave ${slave.url}\r\n`),
        { what: 'the master to find its slave' });
      await putAndWatch(master.port, slave.broker!, topic, 250, 32);
      await waitFor(() => pub('topics-pub'), { what: 'the topics-pub registration' });

      await slave.stop();
      await waitFor(async () => (await c.stats('replication')).includes('sync_slave none\r\n'), { what: 'the slave gone' });
      for (let i = 0; i < 3; i++) {
        const r = await c.put(topic, i % PARTS, `while-slave-down-${i}`);
        assert.equal(r.code, 500, bodyText(r));
      }
      await waitFor(async () => (await pub('topics-pub')) === undefined, { what: 'topics-pub withdrawn' });
      const s = await c.stats('replication');
      assert.match(s, /sync_publish_withdrawn true\r\n/);
      assert.match(s, /sync_withdrawals 1\r\n/);
      assert.ok(await pub('topics-sub'), 'consumers still find the master');
      assert.ok(await zk.exists(paths.brokerMaster(3)));

      // Restarted empty, the slave must fetch everything again before the master is offered to producers.
      await rm(slave.dataDir, { recursive: true, force: true });
      await slave.start();
      const masterEnds = [...master.broker!.store.partitions()].filter((l) => l.topic === topic).map((l) => [l.partition, l.endOffset] as const);
      assert.equal(masterEnds.length, PARTS);
      let sawBehind = false;
      let behindWhenBack: (readonly [number, number])[] = [];
      await waitFor(async () => {
        // Registered first, then looked at: a slave still behind here means the master healed too early.
        const back = (await pub('topics-pub')) !== undefined;
        const behind = masterEnds.filter(([p, end]) => (slave.broker?.store.get(topic, p)?.endOffset ?? -1) < end);
        if (!back && behind.length > 0) sawBehind = true;
        if (back) behindWhenBack = behind;
        return back;
      }, { timeoutMs: 20_000, what: 'topics-pub restored' });
      assert.deepEqual(behindWhenBack, [], 'topics-pub restored while the slave was behind on these [partition, end]');
      assert.ok(sawBehind, 'the restarted slave had to catch up');
      assert.match(await c.stats('replication'), /sync_publish_withdrawn false\r\n/);
      const r = await c.put(topic, 1, 'after healing');
      assert.equal(r.code, 200, bodyText(r));
      await waitFor(() => caughtUp(master.broker!, slave.broker!, topic), { what: 'the slave current' });
      await assertSameLogs(master, slave, topic);
    } finally {
      await c.close();
      await slave.stop();
      await master.stop();
    }
  });

  it('promotes a slave in process, repairing an offset committed past its log by message id', async () => {
    const topic = uniqueName('promote');
    const group = uniqueName('group');
    const master = await cluster.addBroker({ 'system.brokerId': '4' });
    const slave = await cluster.addBroker({ 'system.brokerId': '4', 'system.slaveId': '1' });
    try {
      await seed(master.port, topic, 40);
      await waitFor(() => caughtUp(master.broker!, slave.broker!, topic), { what: 'the slave to catch up' });
      const recs = await recordsOf(slave.broker!.store.get(topic, 0)!);
      const last = recs.at(-1)!;
      const lastEnd = last.offset + RECORD_HEADER_SIZE + last.data.length;
      // Partition 0: a commit of the old master's unreplicated tail (an id and offset past the slave's log).
      // Partition 1: a right commit, which stays.
      const lost = `${last.msgId + 1000n}-${lastEnd + 500}`;
      const p1 = await recordsOf(slave.broker!.store.get(topic, 1)!);
      const rightP1 = `${p1[2]!.msgId}-${p1[2]!.offset + RECORD_HEADER_SIZE + p1[2]!.data.length}`;
      for (const [name, value] of [['4-0', lost], ['4-1', rightP1]] as const) {
        await zk.ensurePath(paths.offset(group, topic, name));
        await zk.setData(paths.offset(group, topic, name), value);
      }

      const refused = await promoteOverHttp(master.broker!);
      assert.equal(refused.status, 409);
      assert.match(String(refused.body.error), /broker 4 is not a slave/);

      await master.stop();
      const report = await slave.broker!.promote();
      assert.equal(report.brokerId, 4);
      assert.equal(report.url, slave.url);
      assert.ok(report.offsetsRepaired >= 1, `${report.offsetsRepaired} offsets repaired`);
      assert.equal(report.offsetsRepaired, 1);
      assert.equal(report.ends[`${topic}-0`], lastEnd);
      const value = async (name: string): Promise<string | undefined> =>
        (await zk.getData(paths.offset(group, topic, name)))?.data.toString();
      assert.equal(await value('4-0'), `${last.msgId}-${lastEnd}`);
      assert.equal(await value('4-1'), rightP1);

      assert.equal((await zk.getData(paths.brokerMaster(4)))?.data.toString(), slave.url);
      assert.equal(await zk.exists(paths.brokerSlave(4, 1)), undefined);
      assert.ok(await zk.exists(paths.topicBroker('topics-pub', topic, 4)), 'offered to producers');
      const c = await RawClient.connect(slave.port);
      try {
        const r = await c.put(topic, 0, 'after promotion');
        assert.equal(r.code, 200, bodyText(r));
        assert.equal(bodyText(r).split(' ')[2], String(lastEnd));
        assert.match(await c.stats('replication'), /slave false\r\n/);
      } finally {
        await c.close();
      }
      const again = await promoteOverHttp(slave.broker!);
      assert.equal(again.status, 409, 'a promoted broker is a master: nothing to promote');
    } finally {
      await slave.stop();
      await master.stop();
    }
  });
});
