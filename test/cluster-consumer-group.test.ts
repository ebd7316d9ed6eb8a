/**
 * Consumer groups on a real ZooKeeper with real (in-process) brokers: rebalancing shares partitions with one owner
 * each, nothing is lost while members come and go, offsets land in ZooKeeper in MetaQ's format, and commits are
 * fenced (a stale owner's commit is refused, an admin reset restarts the live owner from the stored offset).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { firstValueFrom, filter as rxFilter } from 'rxjs';
import { clusterClient, createClient, type MetaqClient } from '../sdk/client/client.js';
import { groupFailpoints } from '../sdk/cluster/group/group-failpoints.js';
import type { ConsumerOptions } from '../sdk/config.js';
import type { Consumer } from '../sdk/consumer/consumer.js';
import { FencedError } from '../sdk/errors.js';
import { partitionName, type Partition } from '../sdk/message.js';
import { ZkOffsetStore } from '../sdk/offsets/zk-offset-store.js';
import { decodeZkOffset, ZkPaths } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../sdk/protocol/zk/zk-session.js';
import { startCluster, type Cluster } from './harness/cluster.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { expireSession } from './harness/zookeeper.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const PARTS_PER_BROKER = 4;

/** A cluster client whose ZooKeeper session the test can reach (to expire it); `close` also removes its temp dir. */
async function openClusterClient(cluster: Cluster): Promise<{ client: MetaqClient; zk: ZkSession; close(): Promise<void> }> {
  const zk = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
  const dir = await tempDir('metaq-group-client-');
  const client = await clusterClient(zk, { zkRoot: cluster.zkRoot, logger, recoverDir: dir.path, offsetsFile: `${dir.path}/offsets.json` });
  return { client, zk, close: async () => { await client.close(); await dir.remove(); } };
}

/** A group member that records every value it got (acked at once). */
interface Member {
  readonly consumer: Consumer;
  readonly client: MetaqClient;
  readonly zk: ZkSession;
  readonly got: string[];
  close(): Promise<void>;
}

async function member(cluster: Cluster, topic: string, options: ConsumerOptions, sink: Map<string, number>): Promise<Member> {
  const { client, zk, close } = await openClusterClient(cluster);
  const consumer = client.consumer({ commitIntervalMs: 200, rebalanceBackoffMs: 200, maxFetchDelayMs: 200, ...options });
  const got: string[] = [];
  consumer.subscribe(topic, (m) => {
    const v = m.value.toString();
    got.push(v);
    sink.set(v, (sink.get(v) ?? 0) + 1);
  });
  return { consumer, client, zk, got, close };
}

/** Owner znodes of a topic: partition → owner data. */
async function owners(zk: ZkSession, paths: ZkPaths, group: string, topic: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of await zk.getChildren(paths.owners(group, topic)) ?? []) {
    const n = await zk.getData(paths.owner(group, topic, p));
    if (n !== undefined) out.set(p, n.data.toString());
  }
  return out;
}

/** Partitions assigned to more than one consumer at this instant (every consumer lives in this process). */
function doublyAssigned(members: readonly Member[], topic: string): string[] {
  const seen = new Map<string, number>();
  for (const m of members) for (const p of m.consumer.assignment()[topic] ?? []) seen.set(p, (seen.get(p) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([p]) => p);
}

/** True when every partition has exactly one owner znode and the owners match what the consumers read. */
async function converged(zk: ZkSession, paths: ZkPaths, group: string, topic: string, members: readonly Member[],
  partitions: number): Promise<boolean> {
  const nodes = await owners(zk, paths, group, topic);
  if (nodes.size !== partitions) return false;
  const reported = new Map<string, string>();
  for (const m of members) for (const p of m.consumer.assignment()[topic] ?? []) reported.set(p, m.consumer.memberId!);
  if (reported.size !== partitions) return false;
  return [...nodes].every(([p, owner]) => reported.get(p) === owner);
}

describe('cluster mode: consumer groups on ZooKeeper', () => {
  let cluster: Cluster;
  let admin: ZkSession;
  let paths: ZkPaths;
  let producerClient: MetaqClient;
  const topics = { share: uniqueName('share'), churn: uniqueName('churn'), fan: uniqueName('fan'), fence: uniqueName('fence'), stale: uniqueName('stale') };

  before(async () => {
    const set: Record<string, string> = {};
    for (const t of Object.values(topics)) set[`topic=${t}.numPartitions`] = String(PARTS_PER_BROKER);
    cluster = await startCluster({ brokers: 3, set });
    paths = new ZkPaths(cluster.zkRoot);
    admin = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    producerClient = await createClient({ zkConnect: cluster.zkConnect, logger });
  });

  after(async () => {
    await producerClient?.close();
    await admin?.close();
    await cluster?.stop();
  });

  async function produce(topic: string, n: number, prefix: string): Promise<string[]> {
    const producer = producerClient.producer();
    const values = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    for (let i = 0; i < n; i += 50) await Promise.all(values.slice(i, i + 50).map((value) => producer.send({ topic, value })));
    return values;
  }

  it('shares 12 partitions among 10 consumers with one owner each, losing nothing, offsets in MetaQ format', async () => {
    const topic = topics.share;
    const group = uniqueName('g-share');
    const sink = new Map<string, number>();
    const sent = await produce(topic, 600, 'a');
    const members: Member[] = [];
    const violations: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        violations.push(...doublyAssigned(members, topic));
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      for (let i = 0; i < 10; i++) members.push(await member(cluster, topic, { group, consumerId: `c${i}` }, sink));
      const more = await produce(topic, 600, 'b');
      await waitFor(() => [...sent, ...more].every((v) => sink.has(v)), { timeoutMs: 30_000, what: 'every message consumed' });
      await waitFor(() => converged(admin, paths, group, topic, members, 3 * PARTS_PER_BROKER), { timeoutMs: 15_000, what: 'one owner per partition' });
      const counts = members.map((m) => (m.consumer.assignment()[topic] ?? []).length).sort();
      assert.deepEqual(counts, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2], 'range: 12 partitions over 10 consumers');
    } finally {
      sampling = false;
      await sampler;
      await Promise.all(members.map((m) => m.close()));
    }
    assert.deepEqual(violations, [], 'no partition was ever read by two consumers at once');
    // Committed offsets: "<msgId>-<offset>" per partition, together covering everything stored.
    const ids = await admin.getChildren(paths.consumerIds(group));
    assert.deepEqual(ids, [], 'every member unregistered');
    const nodes = await admin.getChildren(paths.offsets(group, topic)) ?? [];
    assert.equal(nodes.length, 3 * PARTS_PER_BROKER);
    for (const p of nodes) {
      const n = await admin.getData(paths.offset(group, topic, p));
      assert.match(n!.data.toString(), /^-?\d+-\d+$/, `offset node ${p}`);
      const { msgId, offset } = decodeZkOffset(n!.data);
      const [brokerId, partition] = p.split('-').map(Number) as [number, number];
      const tail = await producerClient.get(topic, { brokerId, partition }, offset);
      assert.equal(tail.messages.length, 0, `${p}: committed ${offset} is the end`);
      assert.ok(msgId > 0n, `${p}: the last message id is kept`);
    }
  });

  it('loses nothing while consumers join and leave during production', async () => {
    const topic = topics.churn;
    const group = uniqueName('g-churn');
    const sink = new Map<string, number>();
    const members: Member[] = [];
    const producer = producerClient.producer();
    const sent: string[] = [];
    let producing = true;
    const production = (async () => {
      for (let i = 0; producing; i++) {
        const batch = Array.from({ length: 20 }, (_, j) => `c-${i}-${j}`);
        await Promise.all(batch.map((value) => producer.send({ topic, value })));
        sent.push(...batch);
      }
    })();
    const started = Date.now();
    try {
      for (let i = 0; i < 3; i++) members.push(await member(cluster, topic, { group, consumerId: `c${i}` }, sink));
      for (let i = 3; i < 8; i++) {
        members.push(await member(cluster, topic, { group, consumerId: `c${i}` }, sink));
        await waitFor(() => sent.length > 200 * i, { timeoutMs: 10_000 });
      }
      for (const m of members.splice(0, 4)) await m.close();
      await waitFor(() => sent.length > 2000, { timeoutMs: 10_000 });
    } finally {
      producing = false;
      await production;
    }
    await waitFor(() => sent.every((v) => sink.has(v)), { timeoutMs: 30_000, what: 'every message consumed' });
    await waitFor(() => converged(admin, paths, group, topic, members, 3 * PARTS_PER_BROKER), { timeoutMs: 15_000, what: 'one owner per partition' });
    const dupes = [...sink.values()].reduce((a, n) => a + n - 1, 0);
    console.log(`# churn: sent ${sent.length}, lost 0, duplicates ${dupes}, ${Date.now() - started} ms`);
    await Promise.all(members.map((m) => m.close()));
  });

  it('gives each of 10 groups every message', async () => {
    const topic = topics.fan;
    const sent = await produce(topic, 300, 'f');
    const sinks = Array.from({ length: 10 }, () => new Map<string, number>());
    const members = await Promise.all(sinks.map((sink, i) => member(cluster, topic, { group: uniqueName(`g-fan${i}`) }, sink)));
    try {
      await waitFor(() => sinks.every((s) => sent.every((v) => s.has(v))), { timeoutMs: 30_000, what: 'every group got everything' });
    } finally {
      await Promise.all(members.map((m) => m.close()));
    }
  });

  it('refuses a stale owner\'s commit and restarts a live owner from an admin-reset offset', async () => {
    const topic = topics.fence;
    const group = uniqueName('g-fence');
    const p: Partition = { brokerId: 0, partition: 1 };
    const name = partitionName(p);
    const ownerPath = paths.owner(group, topic, name);
    const a = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    const b = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    try {
      const storeA = new ZkOffsetStore(a, paths);
      const storeB = new ZkOffsetStore(b, paths);
      const c = (offset: number): { topic: string; partition: Partition; offset: number; msgId: bigint } => ({ topic, partition: p, offset, msgId: 42n });
      // A owns the partition and commits.
      await a.ensurePath(paths.owners(group, topic));
      await a.createEphemeral(ownerPath, 'A');
      assert.equal(await storeA.load(group, topic, p), undefined);
      await storeA.commit(group, [c(100)]);
      assert.equal((await admin.getData(paths.offset(group, topic, name)))!.data.toString(), '42-100');
      // A loses it (its owner node goes, as with an expired session); nobody owns it: A is refused.
      await a.remove(ownerPath);
      await assert.rejects(storeA.commit(group, [c(150)]), FencedError);
      // B takes over and loads; A (even holding a fresh owner node again) can no longer commit over B.
      await b.createEphemeral(ownerPath, 'B');
      assert.equal((await storeB.load(group, topic, p))?.offset, 100);
      await assert.rejects(storeA.commit(group, [c(200)]), FencedError);
      await storeB.commit(group, [c(300)]);
      assert.equal((await admin.getData(paths.offset(group, topic, name)))!.data.toString(), '42-300');
      // An admin reset moves the version: B's next commit is refused, B still owning the partition.
      let told: boolean | undefined;
      storeB.onFenced((_g, _t, _p, stillOwner) => { told = stillOwner; });
      await admin.setData(paths.offset(group, topic, name), '-1-0');
      await assert.rejects(storeB.commit(group, [c(400)]), FencedError);
      assert.equal(told, true);
      assert.equal((await admin.getData(paths.offset(group, topic, name)))!.data.toString(), '-1-0');
    } finally {
      await a.close();
      await b.close();
    }
    // Through a consumer: an admin reset to 0 replays the partition from the start.
    const sent = await produce(topic, 200, 'x');
    const sink = new Map<string, number>();
    const m = await member(cluster, topic, { group: uniqueName('g-reset'), consumerId: 'solo' }, sink);
    try {
      await waitFor(() => sent.every((v) => sink.has(v)), { timeoutMs: 20_000, what: 'first pass' });
      const offsetPath = paths.offset(m.consumer.group, topic, '0-0');
      await waitFor(async () => (await admin.getData(offsetPath))?.data.toString().match(/^\d+-[1-9]\d*$/), { timeoutMs: 10_000, what: 'a commit of 0-0' });
      const fenced = firstValueFrom(m.consumer.status$.pipe(rxFilter((s) => s.type === 'fenced')));
      await admin.setData(offsetPath, '-1-0');
      // New messages make the next periodic commit due; it meets the moved version.
      const more = await produce(topic, 3 * PARTS_PER_BROKER * 2, 'y');
      assert.deepEqual(await fenced, { type: 'fenced', topic, partition: '0-0', stillOwner: true });
      // The partition restarted from the stored offset under a new fence: its commits land again. (What this
      // consumer already processed there is skipped by its processed-offset filter, not redelivered.)
      await waitFor(() => more.every((v) => sink.has(v)), { timeoutMs: 20_000, what: 'the new messages' });
      await waitFor(async () => (await admin.getData(offsetPath))?.data.toString().match(/^\d+-[1-9]\d*$/), { timeoutMs: 10_000, what: 'a commit after the restart' });
    } finally {
      await m.close();
    }
  });

  it('refuses a commit held across its session loss without touching the partition it owns again, and lands no commit queued for the dropped fetcher', async () => {
    const topic = topics.stale;
    const group = uniqueName('g-stale');
    const sink = new Map<string, number>();
    const a = await member(cluster, topic, { group, consumerId: 'a', commitIntervalMs: 50 }, sink);
    const b = await member(cluster, topic, { group, consumerId: 'b', commitIntervalMs: 50 }, sink);
    const statuses: string[] = [];
    a.consumer.status$.subscribe((st) => statuses.push(st.type === 'fenced' ? `fenced ${st.partition} stillOwner=${st.stillOwner}` : st.type));
    let openGate: () => void = () => undefined;
    let letAClaim: () => void = () => undefined;
    let other: Member | undefined;
    try {
      await waitFor(async () => [a, b].every((m) => (m.consumer.assignment()[topic] ?? []).length === 6) &&
        converged(admin, paths, group, topic, [a, b], 3 * PARTS_PER_BROKER), { timeoutMs: 15_000, what: 'two members converged' });
      const first = await produce(topic, 120, 's1');
      await waitFor(() => first.every((v) => sink.has(v)), { timeoutMs: 20_000, what: 'the first batch' });
      // Hold a's next commit of one partition: a's later commits queue behind it.
      const session = a.zk.sessionId;
      let held: { partition: string; offset: number } | undefined;
      const gate = new Promise<void>((resolve) => { openGate = resolve; });
      groupFailpoints.beforeCommit = async (sessionId, t, partition, offset) => {
        if (sessionId !== session || t !== topic || held !== undefined) return;
        held = { partition, offset };
        await gate;
      };
      const second = await produce(topic, 120, 's2');
      await waitFor(() => held !== undefined && second.every((v) => sink.has(v)), { timeoutMs: 20_000, what: 'a commit held, the second batch read' });
      const [brokerId, partition] = held!.partition.split('-').map(Number) as [number, number];
      const heldPartition: Partition = { brokerId, partition };
      const offsetPath = paths.offset(group, topic, held!.partition);
      // a's periodic commits queued meanwhile name the fetchers that the session loss is about to drop.
      await new Promise((r) => setTimeout(r, 300));
      const aEnd = (await producerClient.producer().send({ topic, value: 'marker', partition: heldPartition })).offset;
      await waitFor(() => sink.has('marker'), { timeoutMs: 10_000, what: 'the marker read by a' });
      // A member of the group reading another topic joins: a rebalances without a change of its share, and is held
      // in the middle while its session is expired, until b read past a's position and committed there.
      const claimAllowed = new Promise<void>((resolve) => { letAClaim = resolve; });
      let hookError: unknown;
      groupFailpoints.afterReleaseBeforeClaim = async (id) => {
        if (id !== a.consumer.memberId) return;
        delete groupFailpoints.afterReleaseBeforeClaim;
        await expireSession(cluster.zkConnect, a.zk.credentials, () => statuses.includes('session-expired'))
          .catch((err: unknown) => { hookError = err; });
        await claimAllowed;
      };
      other = await member(cluster, uniqueName('stale-other'), { group, consumerId: 'x' }, new Map());
      await waitFor(() => statuses.includes('session-expired') || hookError, { timeoutMs: 25_000, what: 'a\'s session expired' });
      if (hookError !== undefined) throw hookError;
      const more = await Promise.all(['s3-0', 's3-1', 's3-2'].map((value) => producerClient.producer().send({ topic, value, partition: heldPartition })));
      const bEnd = Math.max(...more.map((r) => r.offset));
      await waitFor(async () => {
        const node = await admin.getData(offsetPath);
        return node !== undefined && node.data.length > 0 && decodeZkOffset(node.data).offset > bEnd;
      }, { timeoutMs: 15_000, what: 'b committing past a\'s position' });
      letAClaim();
      await waitFor(() => statuses.includes('rejoined') && (a.consumer.assignment()[topic] ?? []).includes(held!.partition),
        { timeoutMs: 15_000, what: 'a owning the held partition again' });
      const loaded = (await admin.getData(offsetPath))!.data.toString();
      assert.ok(decodeZkOffset(Buffer.from(loaded)).offset > aEnd, 'a loaded what b committed');
      openGate();
      // The held commit and the commits queued behind it run now: none may move the offset a's new ownership loaded.
      await waitFor(() => statuses.some((st) => st.startsWith(`fenced ${held!.partition}`)), { timeoutMs: 5000, what: 'the held commit refused' });
      for (const end = Date.now() + 1000; Date.now() < end;) {
        assert.equal((await admin.getData(offsetPath))!.data.toString(), loaded, 'a stale commit landed');
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(!statuses.some((st) => st.includes('stillOwner=true')), `the refusal was taken for the current ownership's: ${statuses.join(', ')}`);
      assert.ok((a.consumer.assignment()[topic] ?? []).includes(held!.partition), 'a still reads the partition');
    } finally {
      delete groupFailpoints.beforeCommit;
      delete groupFailpoints.afterReleaseBeforeClaim;
      openGate();
      letAClaim();
      await a.close();
      await b.close();
      await other?.close();
    }
  });

  it('drops every partition at once without committing when its session expires, then rejoins', async () => {
    const topic = topics.share;
    const group = uniqueName('g-expiry');
    const sink = new Map<string, number>();
    const m1 = await member(cluster, topic, { group, consumerId: 'a' }, sink);
    const m2 = await member(cluster, topic, { group, consumerId: 'b' }, sink);
    try {
      await waitFor(() => converged(admin, paths, group, topic, [m1, m2], 3 * PARTS_PER_BROKER), { timeoutMs: 15_000 });
      let dropped = 0;
      let readAtLoss: string[] | undefined;
      m1.consumer.status$.pipe(rxFilter((s) => s.type === 'session-expired')).subscribe(() => {
        dropped ||= Date.now();
        readAtLoss ??= m1.consumer.assignment()[topic] ?? [];
      });
      const rejoined = firstValueFrom(m1.consumer.status$.pipe(rxFilter((s) => s.type === 'rejoined')));
      // ZooKeeper's FAQ trick, a second client on the same session closing it, repeated until m1 noticed: one try can
      // lose the race (m1's client takes its session back before the twin closes it).
      const t0 = Date.now();
      await expireSession(cluster.zkConnect, m1.zk.credentials, () => dropped > 0);
      assert.deepEqual(readAtLoss, [], 'nothing is read once the loss is reported');
      await rejoined;
      await waitFor(() => converged(admin, paths, group, topic, [m1, m2], 3 * PARTS_PER_BROKER), { timeoutMs: 12_000, what: 'convergence after the expiry' });
      console.log(`# expiry: loss noticed ${dropped - t0} ms after the close, converged ${Date.now() - t0} ms after`);
    } finally {
      await m1.close();
      await m2.close();
    }
  });
});
