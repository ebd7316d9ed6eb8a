/**
 * T8 (reference/reliability.md): a ZooKeeper session expires in the middle of a rebalance.
 *
 * Per iteration: 2 brokers x 3 partitions, production running, a group of 3 consumers (session 2000 ms); a 4th
 * joins. The victim (c1 or c2 by the seed: the members that keep their partitions when c4 joins, so the victim's
 * rebalance reaches the failpoint without revoking) is held by `afterReleaseBeforeClaim`; meanwhile its session is
 * expired with ZooKeeper's same-session trick (repeated until the victim notices: one try can lose the race). Before
 * that, one of its commits was caught by `beforeCommit` ahead of its ZooKeeper write. Once the partition's new owner
 * committed past it, the stale commit is let go, with production paused so that no legitimate commit overwrites it
 * before it is seen (the negative control must see it land). The victim is held at least 1 s and until then: were it
 * to claim the partition back first, its new commits would queue behind the held one, and the stale commit would meet
 * the victim's own new ownership (that case is covered in test/cluster-consumer-group.test.ts).
 *
 * Pass (per iteration): within 3x the session timeout every partition has exactly one owner znode and the owners
 * match what the consumers read; the victim reports `session-expired`, delivers nothing of a partition it no longer
 * reads later than 500 ms after that, rejoins and owns partitions again; the stale commit is refused; committed
 * offsets never go back (so duplicates stay within what was delivered but not yet committed); nothing is lost.
 * Reported: expiries, convergence p50/max, lost, dupes, windows in which two consumers read one partition (count,
 * max ms), stale commits refused. Negative control: with fencing off (MetaQ's way) the stale commit lands.
 *
 * ITERATIONS (default 10) bounds the run; SEED (printed) replays the choice of victim and held partition.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import { clusterClient, createClient, type MetaqClient } from '../../sdk/client/client.js';
import { groupFailpoints } from '../../sdk/cluster/group/group-failpoints.js';
import type { Consumer } from '../../sdk/consumer/consumer.js';
import { partitionName, type Message } from '../../sdk/message.js';
import { rng } from '../../sdk/protocol/seeded-rng.js';
import { decodeZkOffset, ZkPaths } from '../../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../../sdk/protocol/zk/zk-session.js';
import { startCluster, type Cluster } from '../harness/cluster.js';
import { tempDir, uniqueName } from '../harness/temp-dir.js';
import { waitFor } from '../harness/wait-for.js';
import { expireSession } from '../harness/zookeeper.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const SESSION_MS = 2000;
const PARTITIONS = 6;
const HOLD_MS = 1000;
const STOP_BOUND_MS = 500;
const ITERATIONS = Number(process.env.ITERATIONS ?? 10);
const SEED = Number(process.env.SEED ?? Date.now() % 1_000_000);

interface Member { readonly consumer: Consumer; readonly zk: ZkSession; close(): Promise<void> }

async function member(cluster: Cluster, topic: string, group: string, id: string,
  onMessage: (m: Message, consumer: Consumer) => void): Promise<Member> {
  const zk = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: SESSION_MS, connectTimeoutMs: 10_000, logger });
  const dir = await tempDir('metaq-t8-');
  const client = await clusterClient(zk, { zkRoot: cluster.zkRoot, logger, recoverDir: dir.path, offsetsFile: `${dir.path}/o.json` });
  const consumer = client.consumer({ group, consumerId: id, commitIntervalMs: 100, rebalanceBackoffMs: 200, maxFetchDelayMs: 100 });
  consumer.subscribe(topic, (m) => onMessage(m, consumer));
  return { consumer, zk, close: async () => { await client.close(); await dir.remove(); } };
}

/** Every partition has exactly one owner znode, and its owner is the one consumer reading it. */
async function ownersMatch(admin: ZkSession, paths: ZkPaths, group: string, topic: string, members: readonly Member[]): Promise<boolean> {
  const reported = new Map<string, string>();
  for (const m of members) for (const p of m.consumer.assignment()[topic] ?? []) {
    if (reported.has(p)) return false;
    reported.set(p, m.consumer.memberId!);
  }
  const nodes = await admin.getChildren(paths.owners(group, topic)) ?? [];
  if (nodes.length !== PARTITIONS || reported.size !== PARTITIONS) return false;
  for (const p of nodes) {
    const n = await admin.getData(paths.owner(group, topic, p));
    if (n?.data.toString() !== reported.get(p)) return false;
  }
  return true;
}

/** The committed offset of an offset node (-1: missing, or claimed with nothing committed yet). */
async function storedOffset(admin: ZkSession, path: string): Promise<number> {
  const node = await admin.getData(path);
  return node === undefined || node.data.length === 0 ? -1 : decodeZkOffset(node.data).offset;
}

/** Windows in which two consumers read one partition, from samples of what each consumer reports. */
class TwoOwnerWindows {
  readonly closed: number[] = [];
  private readonly open = new Map<string, number>();

  sample(members: readonly Member[], topic: string): void {
    const readers = new Map<string, number>();
    for (const m of members) for (const p of m.consumer.assignment()[topic] ?? []) readers.set(p, (readers.get(p) ?? 0) + 1);
    const now = Date.now();
    for (const [p, n] of readers) if (n > 1 && !this.open.has(p)) this.open.set(p, now);
    for (const [p, since] of this.open) {
      if ((readers.get(p) ?? 0) > 1) continue;
      this.open.delete(p);
      this.closed.push(now - since);
    }
  }

  finish(): number[] {
    const now = Date.now();
    for (const since of this.open.values()) this.closed.push(now - since);
    this.open.clear();
    return this.closed;
  }
}

/** Continuous production in batches of 10 (values unique per topic); pausable so that the offsets can settle. */
class Production {
  readonly sent: string[] = [];
  private running: Promise<void> | undefined;
  private stop = false;
  private batch = 0;

  constructor(private readonly client: MetaqClient, private readonly topic: string) {
    this.resume();
  }

  resume(): void {
    if (this.running !== undefined) return;
    this.stop = false;
    const producer = this.client.producer();
    this.running = (async () => {
      while (!this.stop) {
        const values = Array.from({ length: 10 }, (_, j) => `${this.batch}-${j}`);
        this.batch++;
        await Promise.all(values.map((value) => producer.send({ topic: this.topic, value })));
        this.sent.push(...values);
      }
    })();
  }

  async pause(): Promise<void> {
    this.stop = true;
    await this.running;
    this.running = undefined;
  }
}

const RUN = uniqueName('t8');
const topicOf = (n: number): string => `${RUN}-${n}`;

interface Figures {
  victim: string;
  convergenceMs: number;
  /** The victim read nothing it had lost later than this after it reported the expiry (0: nothing at all). */
  lateReadMs: number;
  rejoined: boolean;
  staleLanded: boolean;
  staleRefusals: number;
  /** Committed offsets that went back (partition: from -> to). */
  regressions: string[];
  lost: number;
  dupes: number;
  /** Duplicates outside the victim's uncommitted window. */
  outside: number;
  twoOwnerMs: number[];
}

describe('reliability T8: ZooKeeper session expiry during a rebalance', () => {
  let cluster: Cluster;
  let admin: ZkSession;
  let paths: ZkPaths;
  let producerClient: MetaqClient;
  const rnd = rng(SEED);

  before(async () => {
    const set: Record<string, string> = {};
    for (const n of [...Array.from({ length: ITERATIONS }, (_, i) => i), 99]) set[`topic=${topicOf(n)}.numPartitions`] = String(PARTITIONS / 2);
    cluster = await startCluster({ brokers: 2, numPartitions: PARTITIONS / 2, set });
    paths = new ZkPaths(cluster.zkRoot);
    admin = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger });
    producerClient = await createClient({ zkConnect: cluster.zkConnect, logger });
  });

  after(async () => {
    delete groupFailpoints.afterReleaseBeforeClaim;
    delete groupFailpoints.beforeCommit;
    delete groupFailpoints.unfencedCommits;
    await producerClient?.close();
    await admin?.close();
    await cluster?.stop();
  });

  async function iteration(n: number, unfenced: boolean): Promise<Figures> {
    const topic = topicOf(n);
    const group = uniqueName(`g8-${n}`);
    const victimId = rnd() < 0.5 ? 'c1' : 'c2';
    const heldIndex = rnd() < 0.5 ? 0 : 1;
    const sink = new Map<string, number>();
    /** Where each value lives: `<partition>@<offset>` of its first delivery. */
    const where = new Map<string, { partition: string; offset: number }>();
    const production = new Production(producerClient, topic);
    groupFailpoints.unfencedCommits = unfenced;
    const members: Member[] = [];
    let victim: Member | undefined;
    let expiredAt = 0;
    let lateReadMs = 0;
    const onMessage = (m: Message, c: Consumer): void => {
      const v = m.value.toString();
      sink.set(v, (sink.get(v) ?? 0) + 1);
      if (!where.has(v)) where.set(v, { partition: partitionName(m.partition), offset: m.offset });
      if (c !== victim?.consumer || expiredAt === 0) return;
      // A message of a partition the victim no longer reads (dropped at the expiry, not yet claimed again).
      if (!(c.assignment()[topic] ?? []).includes(partitionName(m.partition))) lateReadMs = Math.max(lateReadMs, Date.now() - expiredAt);
    };
    // Samplers: readers per partition (two-owner windows) and committed offsets (they must never go back).
    const windows = new TwoOwnerWindows();
    const regressions: string[] = [];
    const lastOffset = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      const names = ['0-0', '0-1', '0-2', '1-0', '1-1', '1-2'];
      while (sampling) {
        windows.sample(members, topic);
        await Promise.all(names.map(async (p) => {
          const o = await storedOffset(admin, paths.offset(group, topic, p)).catch(() => undefined);
          if (o === undefined) return;
          const last = lastOffset.get(p) ?? -1;
          if (o < last) regressions.push(`${p}: ${last} -> ${o}`);
          lastOffset.set(p, o);
        }));
        await delay(5);
      }
    })();
    let openGate: () => void = () => undefined;
    let releaseVictim: () => void = () => undefined;
    try {
      for (const id of ['c1', 'c2', 'c3']) members.push(await member(cluster, topic, group, id, onMessage));
      // Settled as the range strategy shares 6 partitions among 3 (a match can also be seen on the way there).
      await waitFor(async () => members.every((m) => (m.consumer.assignment()[topic] ?? []).length === 2) &&
        ownersMatch(admin, paths, group, topic, members), { timeoutMs: 15_000, what: 'three members converged' });
      const v = members[victimId === 'c1' ? 0 : 1]!;
      victim = v;
      const mine = v.consumer.assignment()[topic] ?? [];
      const heldPartition = mine[heldIndex] ?? mine[0]!;
      const offsetPath = paths.offset(group, topic, heldPartition);
      const victimSession = v.zk.sessionId;
      let rejoined = false;
      let rebalancedAgain = false;
      let staleRefusals = 0;
      const statusSub = v.consumer.status$.subscribe((s) => {
        if (s.type === 'session-expired' && expiredAt === 0) {
          expiredAt = Date.now();
          // Reads stop at once: nothing is assigned as the loss is reported.
          if ((v.consumer.assignment()[topic] ?? []).length > 0) lateReadMs = Number.POSITIVE_INFINITY;
        }
        if (s.type === 'rejoined' && expiredAt > 0) rejoined = true;
        if (s.type === 'rebalanced' && rejoined) rebalancedAgain = true;
        if (s.type === 'fenced' && s.partition === heldPartition) staleRefusals++;
      });
      // Hold one of the victim's commits before it reaches ZooKeeper: it is stale once the session is gone.
      let heldOffset: number | undefined;
      const gate = new Promise<void>((resolve) => { openGate = resolve; });
      groupFailpoints.beforeCommit = async (sessionId, t, partition, offset) => {
        if (sessionId !== victimSession || t !== topic || partition !== heldPartition || heldOffset !== undefined) return;
        heldOffset = offset;
        await gate;
      };
      await waitFor(() => heldOffset !== undefined, { timeoutMs: 5000, what: `a commit of ${heldPartition} by the victim to hold` });
      // The victim's last commits that landed: its commits queue behind the held one from now on.
      const window = new Map<string, number>();
      for (const p of mine) window.set(p, await storedOffset(admin, paths.offset(group, topic, p)));
      // In the middle of the rebalance c4 causes, expire the victim's session and hold the victim there: at least
      // HOLD_MS, and until the stale commit was let go (see the file comment).
      let hookError: unknown;
      const released = new Promise<void>((resolve) => { releaseVictim = resolve; });
      groupFailpoints.afterReleaseBeforeClaim = async (id) => {
        if (id !== v.consumer.memberId) return;
        delete groupFailpoints.afterReleaseBeforeClaim;
        const start = Date.now();
        try {
          await expireSession(cluster.zkConnect, v.zk.credentials, () => expiredAt > 0);
        } catch (err) {
          hookError = err;
        }
        await released;
        await delay(Math.max(0, HOLD_MS - (Date.now() - start)));
      };
      members.push(await member(cluster, topic, group, 'c4', onMessage));
      await waitFor(() => expiredAt > 0 || hookError, { timeoutMs: 25_000, what: 'the victim to report its session expired' });
      if (hookError !== undefined) throw hookError;
      await waitFor(() => ownersMatch(admin, paths, group, topic, members), { timeoutMs: 3 * SESSION_MS, what: 'one owner per partition after the expiry' });
      const convergenceMs = Date.now() - expiredAt;
      // The partition's new owner moves its offset past the held one; then, production paused and every message
      // consumed and committed, nothing legitimate writes it while the stale commit is let go.
      await waitFor(async () => (await storedOffset(admin, offsetPath)) > heldOffset!, { timeoutMs: 10_000, what: 'a new owner committing past the held offset' });
      await production.pause();
      await waitFor(() => production.sent.every((x) => sink.has(x)), { timeoutMs: 20_000, what: 'every message consumed before the stale commit' });
      let settled = await storedOffset(admin, offsetPath);
      await waitFor(async () => {
        await delay(300);
        const now = await storedOffset(admin, offsetPath);
        const same = now === settled;
        settled = now;
        return same;
      }, { timeoutMs: 10_000, what: 'the held partition\'s offset settled' });
      openGate();
      let staleLanded = false;
      for (const end = Date.now() + 500; Date.now() < end && !staleLanded;) {
        staleLanded = (await storedOffset(admin, offsetPath)) < settled;
        await delay(5);
      }
      production.resume();
      releaseVictim();
      await waitFor(() => rejoined && rebalancedAgain, { timeoutMs: 15_000, what: 'the victim rejoined and rebalanced' });
      await waitFor(() => ownersMatch(admin, paths, group, topic, members), { timeoutMs: 15_000, what: 'four members converged' });
      const victimOwns = (v.consumer.assignment()[topic] ?? []).length > 0;
      await production.pause();
      await waitFor(() => production.sent.every((x) => sink.has(x)), { timeoutMs: 20_000, what: 'every message consumed' });
      statusSub.unsubscribe();
      const dupes = [...sink.values()].reduce((a, c) => a + c - 1, 0);
      // Duplicates are what the victim delivered past its last commit that landed; anything else is outside it.
      let outside = 0;
      for (const [value, count] of sink) {
        const at = where.get(value)!;
        const from = window.get(at.partition);
        if (count > 1 && (from === undefined || at.offset < from)) outside += count - 1;
      }
      const lost = production.sent.filter((x) => !sink.has(x)).length;
      return { victim: victimId, convergenceMs, lateReadMs, rejoined: rejoined && victimOwns, staleLanded, staleRefusals,
        regressions, lost, dupes, outside, twoOwnerMs: windows.finish() };
    } finally {
      openGate();
      releaseVictim();
      await production.pause();
      sampling = false;
      await sampler;
      delete groupFailpoints.beforeCommit;
      delete groupFailpoints.afterReleaseBeforeClaim;
      groupFailpoints.unfencedCommits = false;
      await Promise.all(members.map((m) => m.close()));
    }
  }

  it('converges to one owner per partition within 3x the session timeout, refuses the stale commit, loses nothing', async () => {
    console.log(`# T8 seed ${SEED}, ${ITERATIONS} iterations`);
    const started = Date.now();
    const figures: Figures[] = [];
    for (let i = 0; i < ITERATIONS; i++) figures.push(await iteration(i, false));
    const conv = figures.map((f) => f.convergenceMs).sort((a, b) => a - b);
    const windows = figures.flatMap((f) => f.twoOwnerMs);
    console.log(`# T8: expiries ${figures.length}, convergence p50 ${conv[Math.floor(conv.length / 2)]} ms max ${conv.at(-1)} ms, ` +
      `lost ${figures.reduce((a, f) => a + f.lost, 0)}, dupes ${figures.map((f) => f.dupes).join('/')} ` +
      `(outside the uncommitted window ${figures.reduce((a, f) => a + f.outside, 0)}), ` +
      `two-owner windows ${windows.length} (max ${Math.max(0, ...windows)} ms), ` +
      `stale commits refused ${figures.filter((f) => !f.staleLanded).length}/${figures.length} ` +
      `(refusals reported ${figures.reduce((a, f) => a + f.staleRefusals, 0)}), ${Date.now() - started} ms`);
    for (const [i, f] of figures.entries()) {
      const at = `iteration ${i} (victim ${f.victim})`;
      assert.ok(f.convergenceMs < 3 * SESSION_MS, `${at}: converged in ${f.convergenceMs} ms`);
      assert.ok(f.lateReadMs <= STOP_BOUND_MS, `${at}: the victim read a lost partition ${f.lateReadMs} ms after the expiry`);
      assert.ok(f.rejoined, `${at}: the victim rejoined and owns partitions again`);
      assert.ok(!f.staleLanded, `${at}: the stale commit was refused`);
      assert.deepEqual(f.regressions, [], `${at}: committed offsets never went back`);
      assert.equal(f.outside, 0, `${at}: duplicates only within the victim's uncommitted window`);
      assert.equal(f.lost, 0, `${at}: nothing lost`);
    }
  });

  it('negative control: with fencing off the stale commit lands', async () => {
    const f = await iteration(99, true);
    console.log(`# T8 control (unfenced): stale commit landed ${f.staleLanded}, offsets went back: ${f.regressions.join(', ') || 'no'}`);
    assert.ok(f.staleLanded, 'without fencing the stale commit overwrites the new owner\'s offset');
  });
});
