/**
 * One consumer's membership of its group in ZooKeeper (MetaQ's ConsumerZooKeeper and ZKLoadRebalanceListener,
 * metaq-1.4.md §3.3): registration, the rebalance loop, partition ownership.
 *
 * - Registration: the ephemeral `consumers/<group>/ids/<group>_<consumerId>` holding the subscribed topics
 *   comma-joined. When the topics change the node is made again, so that the other members (who watch the children
 *   of `ids`, not their data) rebalance too.
 * - Rebalance on a change of `ids` or of `brokers/topics-sub/<topic>` (events coalesce: one run at a time, at most one
 *   more queued). One run is up to `retries` attempts; an attempt reads the members and partitions, computes this
 *   member's share with the strategy, revokes what it no longer owns (the subscription commits, then the owner nodes
 *   go), claims the new partitions by creating their owner nodes (one already there fails the attempt), then assigns
 *   them (the fenced offset store loads their offsets). After a failed attempt every ownership is released and the
 *   member waits `backoffMs`, as MetaQ does, so two members whose views disagreed cannot hold each other's partitions.
 * - Session lost: every partition is revoked at once without a commit (a commit then would be stale and is fenced
 *   anyway) and `session-expired` is reported; once a new session is up the member registers again and rebalances.
 */
import type { Logger } from 'pino';
import { partitionName, parsePartitionName, type Partition } from '../../message.js';
import { CoordinationError } from '../../errors.js';
import type { ZkOffsetStore } from '../../offsets/zk-offset-store.js';
import { consumerIdString, decodeTopicRegistration, parseBrokerRole, sortAsStrings, type ZkPaths } from '../../protocol/zk/zk-layout.js';
import { zkCodeOf, type ZkSession, type ZkSessionEvent, type ZkWatch } from '../../protocol/zk/zk-session.js';
import { groupFailpoints } from './group-failpoints.js';
import type { LoadBalanceStrategy } from './load-balance-strategy.js';

/** What the member drives: a subscription to one topic (TopicSubscription). */
export interface GroupTopic {
  readonly topic: string;
  assign(partitions: readonly Partition[]): Promise<void>;
  revoke(partitions: readonly Partition[], options?: { readonly commit?: boolean }): Promise<void>;
}

/**
 * What a consumer reports of its group membership (`consumer.status$`).
 * - `rebalanced`: the partitions owned after a rebalance changed them, per topic (names `"<brokerId>-<n>"`).
 * - `rebalance-failed`: every attempt failed; the next change in the group tries again.
 * - `session-expired`: the ZooKeeper session was lost; every partition was dropped without a commit.
 * - `rejoined`: registered again with a new session (a rebalance follows).
 * - `fenced`: a commit was refused; `stillOwner` when this member still owns the partition (an admin reset the
 *   offset: the partition restarts from the stored offset), otherwise the partition is dropped.
 */
export type GroupStatus =
  | { readonly type: 'rebalanced'; readonly assignment: Readonly<Record<string, readonly string[]>> }
  | { readonly type: 'rebalance-failed'; readonly attempts: number; readonly error: unknown }
  | { readonly type: 'session-expired' }
  | { readonly type: 'rejoined' }
  | { readonly type: 'fenced'; readonly topic: string; readonly partition: string; readonly stillOwner: boolean };

export interface GroupMemberOptions {
  readonly zk: ZkSession;
  readonly paths: ZkPaths;
  readonly group: string;
  readonly consumerId: string;
  readonly strategy: LoadBalanceStrategy;
  readonly retries: number;
  readonly backoffMs: number;
  readonly logger: Logger;
  /** The fenced store, when the consumer uses it (a user-given store is not told of ownership). */
  readonly store: ZkOffsetStore | undefined;
  readonly onStatus: (status: GroupStatus) => void;
}

/**
 * A consumer's membership of its group.
 *
 * @example
 * ```ts
 * const member = new GroupMember({ zk, paths, group: 'billing', consumerId: 'c1', strategy: rangeStrategy,
 *   retries: 7, backoffMs: 1000, logger, store, onStatus: (s) => log.info(s) });
 * member.addTopic(subscription);   // registers, rebalances, assigns partitions to the subscription
 * await member.removeTopic(subscription);
 * await member.close();            // owner nodes and the ids node deleted
 * ```
 */
export class GroupMember {
  /** `<group>_<consumerId>`: the ids node's name and the owner nodes' data. */
  readonly id: string;
  private readonly topics = new Map<string, { handle: GroupTopic; watch: ZkWatch }>();
  /** Owned partitions per topic (the owner nodes this member created). */
  private readonly owned = new Map<string, Map<string, Partition>>();
  /** Topics whose subscription is closing: left alone by rebalances until removeTopic released them. */
  private readonly removing = new Set<string>();
  private idsWatch: ZkWatch | undefined;
  private readonly offSession: () => void;
  /** Bumped when the session is lost and on close: a rebalance that sees it move stops. */
  private epoch = 0;
  private chain: Promise<void> = Promise.resolve();
  private rebalanceQueued = false;
  private registeredTopics: string | undefined;
  private closed = false;
  private wakeBackoff: (() => void) | undefined;

  constructor(private readonly o: GroupMemberOptions) {
    this.id = consumerIdString(o.group, o.consumerId);
    this.offSession = o.zk.onSession((e) => this.onSession(e));
    o.store?.onFenced((_group, topic, partition, stillOwner, stale) => this.onFenced(topic, partition, stillOwner, stale));
  }

  /** Starts driving `handle`'s partitions: registers the topic and rebalances. */
  addTopic(handle: GroupTopic): void {
    if (this.closed || this.topics.has(handle.topic)) return;
    const watch = this.o.zk.watchChildren(this.o.paths.topicBrokers('topics-sub', handle.topic), () => this.requestRebalance());
    this.topics.set(handle.topic, { handle, watch });
    this.idsWatch ??= this.o.zk.watchChildren(this.o.paths.consumerIds(this.o.group), () => this.requestRebalance());
    this.requestRebalance();
  }

  /**
   * Stops driving the topic (its subscription is closing): once `closed` settled (the final commit, made while the
   * owner nodes still say the partitions are ours), releases the owner nodes and registers the new topic list. The
   * topic may be added again meanwhile: its partitions are claimed anew after the release.
   */
  removeTopic(handle: GroupTopic, closed: Promise<unknown>): Promise<void> {
    const topic = handle.topic;
    const entry = this.topics.get(topic);
    if (entry?.handle !== handle) return Promise.resolve();
    entry.watch.cancel();
    this.topics.delete(topic);
    this.removing.add(topic);
    return this.enqueue(async () => {
      try {
        await closed.catch(() => undefined);
        await this.release(topic, undefined, false);
      } finally {
        this.removing.delete(topic);
      }
      if (this.closed || !this.o.zk.isAlive) return;
      await this.register();
      if (this.topics.has(topic)) this.requestRebalance();
    });
  }

  /** The partitions owned now, per topic. */
  assignment(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [topic, parts] of this.owned) out[topic] = sortAsStrings(parts.keys());
    return out;
  }

  /** Deletes the owner nodes and the ids node (call after the subscriptions made their final commits). */
  close(): Promise<void> {
    if (this.closed) return this.chain;
    this.closed = true;
    this.epoch++;
    this.wakeBackoff?.();
    this.offSession();
    this.o.store?.onFenced(undefined);
    this.idsWatch?.cancel();
    for (const { watch } of this.topics.values()) watch.cancel();
    const handles = new Map([...this.topics].map(([t, e]) => [t, e.handle]));
    this.topics.clear();
    const run = this.chain.then(async () => {
      for (const topic of [...this.owned.keys()]) await this.release(topic, handles.get(topic), true);
      if (this.o.zk.isAlive) await this.o.zk.remove(this.o.paths.consumerId(this.o.group, this.id));
    });
    this.chain = run.catch((err: unknown) => this.o.logger.warn({ err, member: this.id }, 'leaving the group failed'));
    return run;
  }

  // ---- the rebalance loop ----

  private requestRebalance(): void {
    if (this.closed || this.rebalanceQueued) return;
    this.rebalanceQueued = true;
    void this.enqueue(async () => {
      this.rebalanceQueued = false;
      await this.syncedRebalance();
    });
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch((err: unknown) => this.o.logger.error({ err, member: this.id }, 'group task failed'));
    return this.chain;
  }

  private async syncedRebalance(): Promise<void> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.o.retries; attempt++) {
      const epoch = this.epoch;
      if (this.closed || !this.o.zk.isAlive) return;  // a new session brings a new rebalance
      let done = false;
      try {
        done = await this.attempt(epoch);
      } catch (err) {
        lastError = err;
        this.o.logger.warn({ err, member: this.id, attempt }, 'rebalance attempt failed');
      }
      if (epoch !== this.epoch) return;
      if (done) return;
      await this.releaseAll(true);
      await this.backoff();
    }
    this.o.logger.error({ err: lastError, member: this.id, attempts: this.o.retries }, 'rebalance failed; waiting for the next change in the group');
    this.o.onStatus({ type: 'rebalance-failed', attempts: this.o.retries, error: lastError });
  }

  /** One attempt; false when a claim met another owner (retry after the backoff). */
  private async attempt(epoch: number): Promise<boolean> {
    await this.register();
    const consumersPerTopic = await this.readConsumers();
    if (![...consumersPerTopic.values()].some((cs) => cs.includes(this.id)) && this.topics.size > 0) return false;
    const targets = new Map<string, string[]>();
    for (const topic of this.topics.keys()) {
      if (this.removing.has(topic)) continue;
      const partitions = await this.readPartitions(topic);
      targets.set(topic, this.o.strategy(topic, this.id, consumersPerTopic.get(topic) ?? [], partitions));
    }
    if (epoch !== this.epoch) return true;
    let changed = false;
    // Revoke first: the subscription commits while the owner nodes still say it is ours.
    for (const topic of targets.keys()) {
      const keep = new Set(targets.get(topic) ?? []);
      const gone = [...(this.owned.get(topic)?.values() ?? [])].filter((p) => !keep.has(partitionName(p)));
      if (gone.length > 0) {
        changed = true;
        await this.release(topic, this.topics.get(topic)?.handle, true, gone);
      }
    }
    await groupFailpoints.afterReleaseBeforeClaim?.(this.id);
    if (epoch !== this.epoch) return true;
    const claimed = new Map<string, Partition[]>();
    for (const [topic, names] of targets) {
      const mine = this.ownedOf(topic);
      const fresh = names.filter((n) => !mine.has(n));
      if (fresh.length === 0) continue;
      await this.o.zk.ensurePath(this.o.paths.owners(this.o.group, topic));
      const got: Partition[] = [];
      claimed.set(topic, got);
      for (const name of fresh) {
        if (epoch !== this.epoch) return true;
        if (!(await this.claim(topic, name))) return false;
        const p = parsePartitionName(name)!;
        mine.set(name, p);
        got.push(p);
      }
    }
    for (const [topic, parts] of claimed) {
      if (epoch !== this.epoch) return true;
      changed = true;
      await this.topics.get(topic)?.handle.assign(parts);
    }
    if (changed && epoch === this.epoch) this.o.onStatus({ type: 'rebalanced', assignment: this.assignment() });
    return true;
  }

  /** Creates the owner node; false when another member holds it. */
  private async claim(topic: string, name: string): Promise<boolean> {
    try {
      await this.o.zk.createEphemeral(this.o.paths.owner(this.o.group, topic, name), this.id);
      return true;
    } catch (err) {
      if (zkCodeOf(err) !== 'NODE_EXISTS') throw err;
      this.o.logger.info({ member: this.id, topic, partition: name, holder: (err as Error).message }, 'partition still owned by another member; retrying the rebalance');
      return false;
    }
  }

  /** Revokes (committing or not) and deletes the owner nodes of `parts` (default: every owned one) of a topic. */
  private async release(topic: string, handle: GroupTopic | undefined, commit: boolean, parts?: Partition[]): Promise<void> {
    const mine = this.owned.get(topic);
    const list = parts ?? [...(mine?.values() ?? [])];
    if (list.length === 0) return;
    if (handle !== undefined) {
      await handle.revoke(list, { commit }).catch((err: unknown) =>
        this.o.logger.warn({ err, member: this.id, topic }, 'commit at revoke failed; releasing anyway'));
    }
    for (const p of list) {
      const name = partitionName(p);
      mine?.delete(name);
      this.o.store?.forget(this.o.group, topic, p);
      await this.removeOwnerNode(topic, name);
    }
    if (mine?.size === 0) this.owned.delete(topic);
  }

  private async releaseAll(commit: boolean): Promise<void> {
    for (const topic of [...this.owned.keys()]) {
      if (!this.removing.has(topic)) await this.release(topic, this.topics.get(topic)?.handle, commit);
    }
  }

  /** Deletes an owner node only while this session holds it (a lost session's node may be someone else's by now). */
  private async removeOwnerNode(topic: string, name: string): Promise<void> {
    const path = this.o.paths.owner(this.o.group, topic, name);
    try {
      const node = await this.o.zk.getData(path);
      if (node !== undefined && this.o.zk.ownsEphemeral(node.stat)) await this.o.zk.remove(path, node.stat.version);
    } catch (err) {
      this.o.logger.warn({ err, member: this.id, topic, partition: name }, 'could not delete an owner node');
    }
  }

  private ownedOf(topic: string): Map<string, Partition> {
    let m = this.owned.get(topic);
    if (m === undefined) {
      m = new Map();
      this.owned.set(topic, m);
    }
    return m;
  }

  /** Creates (or updates) the ids node; made again when the topics changed so that the others rebalance. */
  private async register(): Promise<void> {
    const topics = [...this.topics.keys()].join(',');
    const path = this.o.paths.consumerId(this.o.group, this.id);
    await this.o.zk.ensurePath(this.o.paths.consumerIds(this.o.group));
    if (this.registeredTopics !== undefined && this.registeredTopics !== topics) {
      const node = await this.o.zk.getData(path);
      if (node !== undefined && this.o.zk.ownsEphemeral(node.stat)) await this.o.zk.remove(path, node.stat.version);
    }
    await this.o.zk.createEphemeral(path, topics);
    this.registeredTopics = topics;
  }

  /** The members subscribed to each topic, sorted as strings. */
  private async readConsumers(): Promise<Map<string, string[]>> {
    const ids = await this.o.zk.getChildren(this.o.paths.consumerIds(this.o.group)) ?? [];
    const out = new Map<string, string[]>();
    await Promise.all(ids.map(async (id) => {
      const node = await this.o.zk.getData(this.o.paths.consumerId(this.o.group, id));
      if (node === undefined) return;  // left meanwhile: its departure is another event
      for (const t of node.data.toString('utf8').split(',')) {
        if (t === '') continue;
        const cs = out.get(t);
        if (cs === undefined) out.set(t, [id]);
        else cs.push(id);
      }
    }));
    for (const [t, cs] of out) out.set(t, sortAsStrings(cs));
    return out;
  }

  /** `"<brokerId>-<n>"` of every broker (master or slave) serving the topic, sorted as strings. */
  private async readPartitions(topic: string): Promise<string[]> {
    const dir = this.o.paths.topicBrokers('topics-sub', topic);
    const children = await this.o.zk.getChildren(dir) ?? [];
    const names = new Set<string>();
    await Promise.all(children.map(async (child) => {
      const role = parseBrokerRole(child);
      if (role === undefined) return;
      const node = await this.o.zk.getData(`${dir}/${child}`);
      if (node === undefined) return;
      try {
        const { numParts } = decodeTopicRegistration(node.data);
        for (let p = 0; p < numParts; p++) names.add(`${role.brokerId}-${p}`);
      } catch (err) {
        throw new CoordinationError('BAD_DATA', `${dir}/${child}: ${(err as Error).message}`);
      }
    }));
    return sortAsStrings(names);
  }

  private async backoff(): Promise<void> {
    if (this.closed || this.o.backoffMs === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeBackoff = undefined;
        resolve();
      }, this.o.backoffMs);
      this.wakeBackoff = () => {
        clearTimeout(timer);
        this.wakeBackoff = undefined;
        resolve();
      };
    });
  }

  // ---- session and fencing events ----

  private onSession(e: ZkSessionEvent): void {
    if (this.closed) return;
    if (e.type === 'lost') {
      this.epoch++;
      this.wakeBackoff?.();
      this.o.store?.forgetAll();
      this.registeredTopics = undefined;
      for (const [topic, parts] of this.owned) {
        // Synchronous up to its first await: fetching stops now, not after the queue drains.
        void this.topics.get(topic)?.handle.revoke([...parts.values()], { commit: false })
          .catch((err: unknown) => this.o.logger.warn({ err, member: this.id, topic }, 'revoke after session loss failed'));
      }
      this.owned.clear();
      this.o.logger.warn({ member: this.id, reason: e.reason }, 'ZooKeeper session lost: every partition dropped without a commit');
      this.o.onStatus({ type: 'session-expired' });
    } else if (!e.first) {
      this.o.onStatus({ type: 'rejoined' });
      this.requestRebalance();
    }
  }

  private onFenced(topic: string, partition: Partition, stillOwner: boolean, stale: boolean): void {
    const name = partitionName(partition);
    this.o.onStatus({ type: 'fenced', topic, partition: name, stillOwner });
    // A late commit of an ownership that already ended (a session lost, the partition claimed again since): the
    // current ownership, if any, has its own fence and stays.
    if (stale) return;
    const epoch = this.epoch;
    void this.enqueue(async () => {
      if (this.closed || epoch !== this.epoch || this.owned.get(topic)?.has(name) !== true) return;
      const handle = this.topics.get(topic)?.handle;
      await handle?.revoke([partition], { commit: false });
      if (stillOwner) {
        this.o.logger.warn({ member: this.id, topic, partition: name }, 'offset changed under this owner: restarting the partition from the stored offset');
        await handle?.assign([partition]);
        return;
      }
      this.o.logger.warn({ member: this.id, topic, partition: name }, 'partition lost to another member: dropped');
      this.owned.get(topic)?.delete(name);
      this.requestRebalance();
    });
  }
}
