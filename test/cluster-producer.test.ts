import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createClient, type MetaqClient } from '../sdk/client/client.js';
import { ZkRouter } from '../sdk/cluster/zk-router.js';
import { CoordinationError, ConfigError, ConnectionError, MetaqError, UnknownTopicError } from '../sdk/errors.js';
import { partitionName, type Partition, type SendResult } from '../sdk/message.js';
import type { Producer } from '../sdk/producer/producer.js';
import { ZkPaths, encodeTopicRegistration } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../sdk/protocol/zk/zk-session.js';
import { startCluster, type Cluster } from './harness/cluster.js';
import { freePort } from './harness/free-port.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from './harness/zookeeper.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Every message stored in `partitions` of `topic`, read back with `client.get`. */
async function countStored(client: MetaqClient, topic: string, partitions: readonly Partition[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of partitions) {
    let offset = 0;
    let n = 0;
    for (;;) {
      const r = await client.get(topic, p, offset);
      if (r.messages.length === 0) break;
      n += r.messages.length;
      offset = r.nextOffset;
    }
    out.set(partitionName(p), n);
  }
  return out;
}

/** Sends continuously (`depth` at a time) until stopped; counts acks per broker and keeps the failures. */
function produceLoop(producer: Producer, topic: string, depth = 8): {
  acked: Map<number, number>; results: SendResult[]; failures: unknown[]; stop(): Promise<void>;
} {
  const acked = new Map<number, number>();
  const results: SendResult[] = [];
  const failures: unknown[] = [];
  let stopped = false;
  const done = (async () => {
    for (let i = 0; !stopped; i++) {
      const batch = await Promise.allSettled(Array.from({ length: depth }, (_, j) => producer.send({ topic, value: `m${i}-${j}` })));
      for (const r of batch) {
        if (r.status === 'rejected') {
          failures.push(r.reason);
          continue;
        }
        results.push(r.value);
        acked.set(r.value.partition.brokerId, (acked.get(r.value.partition.brokerId) ?? 0) + 1);
      }
    }
  })();
  return { acked, results, failures, stop: async () => { stopped = true; await done; } };
}

function brokersOf(partitions: readonly Partition[]): number[] {
  return [...new Set(partitions.map((p) => p.brokerId))];
}

describe('cluster mode: producer discovery through ZooKeeper', () => {
  const discTopic = uniqueName('disc');
  const rrTopic = uniqueName('rr');
  const growTopic = uniqueName('grow');
  const defaultTopic = uniqueName('fallback');
  let cluster: Cluster;
  let client: MetaqClient;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    cluster = await startCluster({
      brokers: 2,
      set: {
        [`topic=${discTopic}.numPartitions`]: '12',
        [`topic=${rrTopic}.numPartitions`]: '3',
        [`topic=${growTopic}.numPartitions`]: '2',
        [`topic=${defaultTopic}.numPartitions`]: '3',
      },
    });
    dir = await tempDir('metaq-cluster-producer-');
    client = await createClient({ zkConnect: cluster.zkConnect, zkSessionTimeoutMs: 4000, recoverDir: dir.path, logger });
  });

  after(async () => {
    await client?.close();
    await cluster?.stop();
    await dir?.remove();
  });

  it('lists the partitions of every broker sorted numerically by broker id, then partition', async () => {
    const partitions = await client.partitionsFor(discTopic);
    const expected = [0, 1].flatMap((brokerId) => Array.from({ length: 12 }, (_, partition) => `${brokerId}-${partition}`));
    assert.deepEqual(partitions.map(partitionName), expected);
  });

  it('spreads sends round robin over the partitions of all brokers', async () => {
    const producer = client.producer();
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => producer.send({ topic: rrTopic, value: `v${i}` })));
    const perPartition = new Map<string, number>();
    for (const r of results) perPartition.set(partitionName(r.partition), (perPartition.get(partitionName(r.partition)) ?? 0) + 1);
    const all = ['0-0', '0-1', '0-2', '1-0', '1-1', '1-2'];
    assert.deepEqual([...perPartition.keys()].sort(), all);
    for (const n of perPartition.values()) assert.equal(n, 10);
    // MetaQ's round robin starts at the second partition.
    assert.equal(partitionName(results[0]!.partition), '0-1');
    const stored = await countStored(client, rrTopic, await client.partitionsFor(rrTopic));
    assert.deepEqual(Object.fromEntries(stored), Object.fromEntries(all.map((p) => [p, 10])));
    await producer.close();
  });

  it('sends a topic no broker registered to the default topic partitions, then to its own once registered', async () => {
    const topic = uniqueName('unregistered');
    await assert.rejects(client.partitionsFor(topic), UnknownTopicError);
    const producer = client.producer({ defaultTopic });
    const first = await producer.send({ topic, value: 'via the default topic' });
    assert.equal(first.topic, topic);
    assert.ok((await client.partitionsFor(defaultTopic)).some((p) => partitionName(p) === partitionName(first.partition)));
    // The broker's [topic=*] section took the put under the topic's own name, and it now registers the topic (4
    // partitions, where the default topic has 3): later sends follow the new registration without a restart.
    const stored = await client.get(topic, first.partition, 0);
    assert.equal(stored.messages[0]?.value.toString(), 'via the default topic');
    const own = await waitFor(async () => {
      const ps = await client.partitionsFor(topic).catch(() => []);
      return ps.length > 0 ? ps : undefined;
    }, { what: 'the topic registered by the broker that took the put' });
    assert.deepEqual(own.map(partitionName), [0, 1, 2, 3].map((n) => `${first.partition.brokerId}-${n}`));
    const later = await waitFor(async () => {
      const r = await producer.send({ topic, value: 'own partition' });
      return r.partition.partition === 3 ? r : undefined;
    }, { what: 'a send to a partition only the topic itself has' });
    assert.equal(later.topic, topic);
    await producer.close();
  });

  it('fails a send to a topic no broker registered with UnknownTopicError when there is no default topic', async () => {
    const producer = client.producer();
    const err = await producer.send({ topic: uniqueName('nowhere'), value: 'x' }).catch((e: unknown) => e);
    assert.ok(err instanceof UnknownTopicError, String(err));
    assert.equal(err.retriable, false);
    await producer.close();
  });

  it('sends to a broker added while producing, without restarting the producer', async () => {
    const producer = client.producer();
    const loop = produceLoop(producer, growTopic);
    let seenAt = 0;
    try {
      await waitFor(() => (loop.acked.get(0) ?? 0) > 20 && (loop.acked.get(1) ?? 0) > 20, { what: 'sends to brokers 0 and 1' });
      const added = await cluster.addBroker();
      assert.equal(added.id, 2);
      await waitFor(async () => brokersOf(await client.partitionsFor(growTopic)).includes(2), { what: 'broker 2 listed' });
      seenAt = loop.results.length;
      await waitFor(() => (loop.acked.get(2) ?? 0) >= 50, { timeoutMs: 15_000, what: 'sends acked by the added broker' });
    } finally {
      await loop.stop();
      await producer.close();
    }
    assert.deepEqual(loop.failures, []);
    // Promptly: within a few batches of the router's change, not at the producer's periodic refresh (1024 sends).
    const firstToNew = loop.results.findIndex((r) => r.partition.brokerId === 2);
    assert.ok(firstToNew - seenAt <= 3 * 8, `first send to broker 2 was send ${firstToNew}, the router listed it at ${seenAt}`);
    const partitions = await client.partitionsFor(growTopic);
    assert.deepEqual(brokersOf(partitions), [0, 1, 2]);
    const stored = await countStored(client, growTopic, partitions.filter((p) => p.brokerId === 2));
    assert.equal([...stored.values()].reduce((a, b) => a + b, 0), loop.acked.get(2));
  });

  it('drops the partitions of a stopped broker and keeps sending to the others', async () => {
    const producer = client.producer();
    const loop = produceLoop(producer, growTopic);
    let afterDrop = 0;
    try {
      await waitFor(() => (loop.acked.get(1) ?? 0) > 20, { what: 'sends to broker 1' });
      await cluster.brokers[1]!.stop();
      await waitFor(async () => !brokersOf(await client.partitionsFor(growTopic)).includes(1), { what: 'broker 1 unlisted' });
      afterDrop = loop.results.length;
      await waitFor(() => loop.results.length - afterDrop >= 200, { timeoutMs: 15_000, what: 'sends after the stop' });
    } finally {
      await loop.stop();
      await producer.close();
    }
    // Sends in flight while the broker went away may fail, retriably; nothing after the list changed goes to it.
    for (const f of loop.failures) assert.ok(f instanceof MetaqError && f.retriable, String(f));
    const tail = loop.results.slice(afterDrop + 2 * 8);
    assert.ok(tail.length > 100);
    assert.deepEqual([...new Set(tail.map((r) => r.partition.brokerId))].sort(), [0, 2]);
    assert.deepEqual(brokersOf(await client.partitionsFor(growTopic)), [0, 2]);
  });

  it('sends one-way to the brokers listed now, after every broker it started with went away', async () => {
    assert.deepEqual(brokersOf(await client.partitionsFor(rrTopic)), [0, 2]);
    const logs = client.asyncProducer({ resendIntervalMs: 100 });
    await cluster.brokers[0]!.stop();
    await cluster.brokers[2]!.stop();
    await cluster.brokers[1]!.start();
    await waitFor(async () => brokersOf(await client.partitionsFor(rrTopic)).join() === '1', { what: 'only broker 1 listed' });
    for (let i = 0; i < 100; i++) logs.send({ topic: rrTopic, value: `one-way ${i}` });
    await waitFor(() => logs.stats().sent + logs.stats().resent === 100, {
      timeoutMs: 15_000, what: `100 one-way sends acked (${JSON.stringify(logs.stats())})`,
    });
    assert.equal(logs.stats().dropped + logs.stats().failed, 0);
    await logs.close();
  });

  it('leaves no socket open once the client is closed', async () => {
    const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    const before = sockets();
    const other = await createClient({ zkConnect: cluster.zkConnect, logger });
    const producer = other.producer();
    await producer.send({ topic: rrTopic, value: 'x' });
    await producer.send({ topic: rrTopic, value: 'y' });
    // The ZooKeeper session and two broker links, plus the brokers' accepted ends (in this process).
    assert.ok(sockets() >= before + 3);
    await other.close();
    await waitFor(() => sockets() === before, { what: `sockets back to ${before} (now ${sockets()})` });
  });
});

describe('cluster mode: createClient refusals', () => {
  it('rejects zkConnect together with serverUrl', async () => {
    await assert.rejects(createClient({ zkConnect: '127.0.0.1:2181', serverUrl: 'meta://127.0.0.1:8123', logger }), ConfigError);
  });

  it('names the connect string when ZooKeeper cannot be reached in time', async () => {
    const connect = `127.0.0.1:${await freePort()}`;
    const err = await createClient({ zkConnect: connect, zkConnectionTimeoutMs: 800, logger }).catch((e: unknown) => e);
    assert.ok(err instanceof CoordinationError, String(err));
    assert.match(err.message, new RegExp(`ZooKeeper at ${connect} within 800 ms`));
    assert.equal(err.retriable, true);
  });
});

describe('ZkRouter over a hand-built layout', () => {
  const paths = new ZkPaths('/handmade');
  let zkServer: ZooKeeperServer;
  let admin: ZkSession;
  let router: ZkRouter;

  before(async () => {
    zkServer = await startZooKeeper();
    admin = await ZkSession.open({ connect: zkServer.connectString, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    for (const kind of ['topics-pub', 'topics-sub'] as const) await admin.ensurePath(paths.topicBrokers(kind, 't'));
    await admin.ensurePath(paths.brokerIdDir(5));
    await admin.ensurePath(paths.brokerIdDir(7));
    await admin.create(paths.brokerMaster(5), `meta://127.0.0.1:${await freePort()}`);
    await admin.create(paths.brokerSlave(7, 1), 'meta://127.0.0.1:1');
    await admin.create(paths.topicBroker('topics-pub', 't', 5), encodeTopicRegistration(2, 5));
    await admin.create(paths.topicBroker('topics-pub', 't', 7), encodeTopicRegistration(3, 7));
    await admin.create(paths.topicBroker('topics-pub', 't', 5, 1), encodeTopicRegistration(4, 5, 1));
    await admin.create(paths.topicBroker('topics-sub', 't', 5), encodeTopicRegistration(2, 5));
    await admin.create(paths.topicBroker('topics-sub', 't', 5, 1), encodeTopicRegistration(2, 5, 1));
    await admin.create(paths.topicBroker('topics-sub', 't', 7, 1), encodeTopicRegistration(3, 7, 1));
    await admin.create(`${paths.topicBrokers('topics-sub', 't')}/not-a-broker`, 'ignored');
    const zk = await ZkSession.open({ connect: zkServer.connectString, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    router = await ZkRouter.start({ zk, paths, linkOptions: { logger, requestTimeoutMs: 2000 }, logger, readTimeoutMs: 5000 });
  });

  after(async () => {
    await router?.close();
    await admin?.close();
    await zkServer?.stop();
  });

  const names = (ps: readonly Partition[]): string[] => ps.map(partitionName);

  it('publishes to masters with a registered master only, and subscribes to masters and slaves', async () => {
    assert.deepEqual(names(await router.partitionsForPublish('t')), ['5-0', '5-1']);
    assert.deepEqual(names(await router.partitionsForSubscribe('t')), ['5-0', '5-1', '7-0', '7-1', '7-2']);
  });

  it('follows a master that appears, a partition count that changes, and malformed data', async () => {
    const v0 = router.topologyVersion;
    await admin.create(paths.brokerMaster(7), 'meta://127.0.0.1:2');
    await waitFor(async () => names(await router.partitionsForPublish('t')).length === 5, { what: 'broker 7 published' });
    assert.ok(router.topologyVersion > v0);
    await admin.setData(paths.topicBroker('topics-pub', 't', 5), encodeTopicRegistration(1, 5));
    await waitFor(async () => names(await router.partitionsForPublish('t')).join() === '5-0,7-0,7-1,7-2', { what: 'numParts 1' });
    await admin.setData(paths.topicBroker('topics-pub', 't', 7), 'garbage');
    await waitFor(async () => names(await router.partitionsForPublish('t')).join() === '5-0', { what: 'broker 7 ignored' });
  });

  it('replaces the link of a broker whose master moved and refuses one whose master is gone', async () => {
    const first = router.link(5);
    assert.equal(router.link(5), first);
    const moved = `meta://127.0.0.1:${await freePort()}`;
    await admin.setData(paths.brokerMaster(5), moved);
    await waitFor(() => router.link(5).url === moved, { what: 'a link to the moved master' });
    assert.notEqual(router.link(5), first);
    await admin.remove(paths.brokerMaster(5));
    const err = await waitFor(() => {
      try {
        router.link(5);
        return undefined;
      } catch (e) {
        return e;
      }
    }, { what: 'broker 5 unknown' });
    assert.ok(err instanceof ConnectionError && err.retriable, String(err));
    await waitFor(async () => (await router.partitionsForPublish('t').catch((e: unknown) => e)) instanceof UnknownTopicError,
      { what: 'no publishable partition left' });
  });
});
