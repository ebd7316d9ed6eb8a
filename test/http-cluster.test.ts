/**
 * The HTTP views that read ZooKeeper (/api/cluster, /api/groups, consumer lag in /metrics) against a real
 * ZooKeeper and two real brokers. The consumer group is played by a ZooKeeper session of the test writing MetaQ's
 * layout (ids, owner and offset nodes), as in cli-cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ZkPaths } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../sdk/protocol/zk/zk-session.js';
import { startCluster, type Cluster } from './harness/cluster.js';
import { RawClient } from './harness/raw-client.js';
import { uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

/** Each record is a 20-byte header plus its DATA: `m0`..`m9` are 22 bytes. */
const RECORD = 22;

interface PartitionJson { brokerId: number; partition: number; owner: string | null; committed: number | null; end: number | null; lag: number | null }
interface GroupJson { group: string; topics: { topic: string; partitions: PartitionJson[] }[] }

describe('http/cluster views', () => {
  const topic = uniqueName('orders');
  const group = uniqueName('billing');
  const member = `${group}_consumer-1`;
  let cluster: Cluster;
  let consumer: ZkSession;
  let paths: ZkPaths;
  const base = (b: number): string => `http://127.0.0.1:${cluster.brokers[b]!.broker!.httpPort}`;

  before(async () => {
    cluster = await startCluster({ brokers: 2, numPartitions: 2 });
    paths = new ZkPaths(cluster.zkRoot);
    consumer = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000,
      logger: pino({ level: 'silent' }) });
    // broker 0 partition 0: 4 records (end 88); broker 1 partition 1: 2 records (end 44).
    for (const [b, partition, n] of [[0, 0, 4], [1, 1, 2]] as const) {
      const raw = await RawClient.connect(cluster.brokers[b]!.port);
      for (let i = 0; i < n; i++) assert.equal((await raw.put(topic, partition, `m${i}`)).code, 200);
      await raw.close();
    }
    await waitFor(async () => (await consumer.getChildren(paths.topicBrokers('topics-sub', topic)))?.length === 2,
      { what: 'both brokers to register the topic' });
    // One live member owning 0-0, committed after the first record; 1-1 committed by an earlier member.
    await consumer.ensurePath(paths.consumerIds(group));
    await consumer.createEphemeral(paths.consumerId(group, member), topic);
    await consumer.ensurePath(paths.owners(group, topic));
    await consumer.createEphemeral(paths.owner(group, topic, '0-0'), member);
    await consumer.ensurePath(paths.offsets(group, topic));
    await consumer.create(paths.offset(group, topic, '0-0'), `7340032-${RECORD}`);
    await consumer.create(paths.offset(group, topic, '1-1'), `-1-${2 * RECORD}`);
  });

  after(async () => {
    await consumer?.close();
    await cluster?.stop();
  });

  it('lists both brokers with their masters and marks itself', async () => {
    const r = await fetch(`${base(1)}/api/cluster`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), {
      zk: true,
      brokers: [
        { brokerId: 0, master: cluster.brokers[0]!.url, slaves: [], self: false },
        { brokerId: 1, master: cluster.brokers[1]!.url, slaves: [], self: true },
      ],
    });
  });

  it('shows each group partition with owner, committed offset, end and lag, as metaq groups computes them', async () => {
    const g = await waitFor(async () => {
      const body = await (await fetch(`${base(0)}/api/groups`)).json() as { zk: boolean; groups: GroupJson[] };
      assert.equal(body.zk, true);
      return body.groups.find((x) => x.group === group);
    }, { what: `group ${group} in /api/groups` });
    const t = g.topics.find((x) => x.topic === topic)!;
    const rows = new Map(t.partitions.map((p) => [`${p.brokerId}-${p.partition}`, p]));
    assert.deepEqual(rows.get('0-0'), { brokerId: 0, partition: 0, owner: member, committed: RECORD, end: 4 * RECORD, lag: 3 * RECORD });
    assert.deepEqual(rows.get('1-1'), { brokerId: 1, partition: 1, owner: null, committed: 2 * RECORD, end: 2 * RECORD, lag: 0 });
    assert.deepEqual(rows.get('0-1'), { brokerId: 0, partition: 1, owner: null, committed: null, end: 0, lag: null });
  });

  it('exports the lag of its own partitions in /metrics and follows a new commit', async () => {
    const series = `metaq_consumer_lag_bytes{group="${group}",topic="${topic}",partition="0-0"}`;
    const lagOf = async (b: number, s: string): Promise<number | undefined> => {
      const line = (await (await fetch(`${base(b)}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${s} `));
      return line === undefined ? undefined : Number(line.slice(s.length + 1));
    };
    assert.equal(await waitFor(() => lagOf(0, series), { what: 'the lag series' }), 3 * RECORD);
    assert.equal(await lagOf(1, series), undefined, 'broker 1 does not report broker 0\'s partition');
    assert.equal(await lagOf(1, `metaq_consumer_lag_bytes{group="${group}",topic="${topic}",partition="1-1"}`), 0);
    await consumer.setData(paths.offset(group, topic, '0-0'), `7340033-${4 * RECORD}`);
    await waitFor(async () => (await lagOf(0, series)) === 0, { what: 'the lag to follow the commit (after the cache expires)' });
  });
});
