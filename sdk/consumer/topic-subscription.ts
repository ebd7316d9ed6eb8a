/**
 * One subscription of a consumer to a topic (one `messages$(topic)` subscriber): the partitions assigned to it,
 * each with its {@link PartitionFetcher}, the emitter bounded by `maxInFlight`, the periodic commit of the acked
 * watermarks, and the recover store of messages whose in-line retries ran out.
 *
 * Partitions come and go at runtime through {@link TopicSubscription.assign} and {@link TopicSubscription.revoke}
 * (the cluster's rebalancing drives them; a direct connection assigns every partition once). Revoking commits the
 * partitions' watermarks before it resolves, so the next owner resumes where this one stopped.
 */
import type { Subscriber } from 'rxjs';
import type { ClientContext } from '../client/client-context.js';
import { BrokerError, MetaqError, ShuttingDownError } from '../errors.js';
import { partitionName, type Delivery, type Message, type Partition } from '../message.js';
import { MAX_OFFSET } from '../protocol/commands.js';
import { encodeOffset } from '../protocol/encode.js';
import type { CommittedOffset, OffsetStore } from '../offsets/offset-store.js';
import type { ResolvedConsumerOptions } from './consumer-options.js';
import type { FetchedMessage } from './decode-messages.js';
import { DeliveryQueue, type DeliverySource } from './delivery-queue.js';
import { replyOffset } from './fetch-once.js';
import { PartitionFetcher, type FetcherHost } from './partition-fetcher.js';
import type { ProcessedRange, ProcessedRanges } from './processed-ranges.js';
import type { DedupeCache } from './dedupe-cache.js';

/**
 * The part of the recover manager a subscription uses (sdk/consumer/recover-manager.ts).
 *
 * @example
 * ```ts
 * const store: FailedMessageStore<Buffer> = new RecoverManager({ ctx, topic, group, ...rest, redeliver });
 * ```
 */
export interface FailedMessageStore<V> {
  store(message: Message<V>): Promise<void>;
  start(): void;
  close(): Promise<void>;
}

/**
 * What a subscription gets from its consumer.
 *
 * @example
 * ```ts
 * new TopicSubscription({ ctx, options, offsetStore, processed, makeRecoverStore, ready }, 'orders', subscriber);
 * ```
 */
export interface SubscriptionDeps<V> {
  readonly ctx: ClientContext;
  readonly options: ResolvedConsumerOptions<V>;
  readonly offsetStore: OffsetStore;
  /** Runs already processed per partition (the duplicate filter by offset). */
  readonly processed: ProcessedRanges | undefined;
  /** MetaQ's message-id cache (ids processed recently); undefined when off. */
  readonly idCache?: DedupeCache | undefined;
  /** Makes the recover store of this topic@group; `redeliver` resolves when the redelivered message is acked. */
  readonly makeRecoverStore: (topic: string, redeliver: (message: Message<V>) => Promise<void>) => FailedMessageStore<V>;
  /** Resolves once earlier subscriptions of the consumer made their final commits (so offsets load fresh). */
  readonly ready: Promise<unknown>;
  /**
   * True (default): {@link TopicSubscription.start} assigns every partition (a direct connection). False: partitions
   * come only through assign/revoke (a consumer group in cluster mode).
   */
  readonly assignAll?: boolean;
}

/** Options of {@link TopicSubscription.revoke}. */
export interface RevokeOptions {
  /**
   * Commit the partitions' acked watermarks before resolving (default true). False when the ownership is already
   * lost (a ZooKeeper session expired): a commit then would be stale.
   */
  readonly commit?: boolean;
}

/** Where a partition starts: the committed offset, or one asked from the broker (`committed` false). */
interface StartOffset {
  readonly offset: number;
  readonly msgId: bigint;
  readonly committed: boolean;
}

/** A redelivery from the recover store: its ack resolves the store's promise, nack rejects it. */
class RecoveredDelivery<V> implements Delivery<V> {
  settled = false;
  constructor(readonly message: Message<V>, private readonly source: RecoverSource<V>,
    readonly resolve: () => void, readonly reject: (e: unknown) => void) {}

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.source.settled(this);
    this.resolve();
  }

  nack(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.source.settled(this);
    this.reject(error ?? new Error('nacked'));
  }
}

/** The recover store's redeliveries as a delivery source, sharing the subscription's maxInFlight. */
class RecoverSource<V> implements DeliverySource {
  queued = false;
  private readonly waiting: RecoveredDelivery<V>[] = [];
  private readonly out = new Set<RecoveredDelivery<V>>();

  constructor(private readonly queue: DeliveryQueue<V>) {}

  redeliver(message: Message<V>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push(new RecoveredDelivery(message, this, resolve, reject));
      this.queue.schedule(this);
      this.queue.pump();
    });
  }

  emitNext(): void {
    const d = this.waiting.shift();
    if (d === undefined) return;
    this.out.add(d);
    this.queue.emit(d);
    if (this.waiting.length > 0) this.queue.schedule(this);
  }

  settled(d: RecoveredDelivery<V>): void {
    if (!this.out.delete(d)) return;
    this.queue.settle();
    this.queue.pump();
  }

  /** Fails every redelivery not acked yet: the store keeps those messages. */
  close(): void {
    const err = new ShuttingDownError('the subscription');
    for (const d of [...this.waiting, ...this.out]) {
      d.settled = true;
      d.reject(err);
    }
    this.waiting.length = 0;
    this.out.clear();
  }
}

/**
 * The state behind one `messages$(topic)` subscriber.
 *
 * @example
 * ```ts
 * const sub = new TopicSubscription(deps, 'orders', subscriber);
 * sub.start();                       // assigns every partition (direct connection)
 * await sub.revoke([{ brokerId: 0, partition: 1 }]);  // commits 0-1, then stops reading it
 * await sub.close();                 // stops, final commit
 * ```
 */
export class TopicSubscription<V> implements FetcherHost<V> {
  readonly ctx: ClientContext;
  readonly options: ResolvedConsumerOptions<V>;
  readonly queue: DeliveryQueue<V>;
  private readonly fetchers = new Map<string, PartitionFetcher<V>>();
  /** Partitions assigned whose start offset is still being resolved. */
  private readonly starting = new Set<string>();
  private readonly recoverSource: RecoverSource<V>;
  private readonly recover: FailedMessageStore<V>;
  /**
   * Fetchers revoked without a commit (their ownership is gone). A commit queued earlier may still name them; it
   * must not run later: the partition may be owned again by now, and the old watermark would overwrite the new one.
   */
  private readonly abandoned = new WeakSet<PartitionFetcher<V>>();
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: SubscriptionDeps<V>, readonly topic: string,
    private readonly subscriber: Subscriber<Delivery<V>>) {
    this.ctx = deps.ctx;
    this.options = deps.options;
    this.queue = new DeliveryQueue<V>(deps.options.maxInFlight, (d) => subscriber.next(d));
    this.recoverSource = new RecoverSource<V>(this.queue);
    this.recover = deps.makeRecoverStore(topic, (m) => this.recoverSource.redeliver(m));
  }

  /** Starts the periodic commit and recovery, and assigns every partition of the topic unless `assignAll` is false. */
  start(): void {
    this.commitTimer = setInterval(() => {
      this.commit().catch((err: unknown) => this.ctx.logger.warn({ err, topic: this.topic }, 'periodic offset commit failed; retrying next period'));
    }, this.options.commitIntervalMs);
    this.commitTimer.unref();
    this.recover.start();
    if (this.deps.assignAll === false) return;
    (async () => {
      await this.deps.ready;
      const partitions = await this.ctx.router.partitionsForSubscribe(this.topic);
      await this.assign(partitions);
    })().catch((err: unknown) => this.fail(err));
  }

  /** The partitions being read. */
  get assigned(): Partition[] {
    return [...this.fetchers.values()].map((f) => f.partition);
  }

  /** The offset last committed (or loaded from the store) of each partition being read; null: none yet. */
  committedOffsets(): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const [name, f] of this.fetchers) out[name] = f.committedOffset < 0 ? null : f.committedOffset;
    return out;
  }

  /** Starts reading these partitions (ignoring ones already assigned) from their committed offsets. */
  async assign(partitions: readonly Partition[]): Promise<void> {
    const fresh = partitions.filter((p) => !this.fetchers.has(partitionName(p)) && !this.starting.has(partitionName(p)));
    for (const p of fresh) this.starting.add(partitionName(p));
    const results = await Promise.allSettled(fresh.map(async (p) => {
      const name = partitionName(p);
      let start: StartOffset;
      try {
        start = await this.startOffset(p);
      } catch (err) {
        this.starting.delete(name);
        throw err;
      }
      if (this.stopped || !this.starting.delete(name)) return;  // revoked or closed meanwhile
      const f = new PartitionFetcher<V>(this, p, start.offset, start.msgId, start.committed);
      this.fetchers.set(name, f);
      f.start();
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** True while the partition is read or being started. */
  has(p: Partition): boolean {
    const name = partitionName(p);
    return this.fetchers.has(name) || this.starting.has(name);
  }

  /**
   * Stops reading these partitions and (unless `commit: false`) commits their acked watermarks; acks arriving later
   * are ignored.
   */
  async revoke(partitions: readonly Partition[], options: RevokeOptions = {}): Promise<void> {
    const gone: PartitionFetcher<V>[] = [];
    for (const p of partitions) {
      const name = partitionName(p);
      this.starting.delete(name);
      const f = this.fetchers.get(name);
      if (f === undefined) continue;
      this.fetchers.delete(name);
      this.dropFetcher(f);
      gone.push(f);
      if (options.commit === false) this.abandoned.add(f);
    }
    this.queue.pump();
    // A partition not dirty has nothing to commit and no commit in flight (it stays dirty until its commit lands):
    // its revoke need not queue behind commits of other partitions.
    if (options.commit !== false && gone.some((f) => f.dirty)) await this.enqueueCommit(gone);
  }

  /** Commits the watermark of every partition that moved since its last commit. */
  commit(): Promise<void> {
    return this.enqueueCommit(this.fetchers.values());
  }

  /** Completes the subscriber (which runs the teardown, {@link close}). */
  complete(): void {
    this.subscriber.complete();
  }

  /** Stops every partition, closes the recover store, and makes the final commit (its failure rejects). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopped = true;
      this.starting.clear();
      if (this.commitTimer !== undefined) clearInterval(this.commitTimer);
      for (const f of this.fetchers.values()) this.dropFetcher(f);
      this.queue.close();
      this.recoverSource.close();
      try {
        await this.recover.close();
      } finally {
        await this.commit();
      }
    })();
    return this.closing;
  }

  accept(m: FetchedMessage<V>): boolean {
    if (this.deps.idCache?.has(this.options.group, m.id) === true) return false;
    const filter = this.options.filter;
    if (filter === undefined) return true;
    try {
      return filter(m);
    } catch (err) {
      this.ctx.logger.warn({ err, topic: this.topic, offset: m.offset }, 'message filter threw: the message is skipped');
      return false;
    }
  }

  processedMessage(m: FetchedMessage<V>): void {
    this.deps.idCache?.add(this.options.group, m.id);
  }

  processedRange(p: Partition): ProcessedRange | undefined {
    return this.deps.processed?.of(this.topic, p);
  }

  storeFailed(message: FetchedMessage<V>): Promise<void> {
    return this.recover.store(message);
  }

  fail(error: unknown): void {
    if (this.stopped) return;
    this.ctx.logger.error({ err: error, topic: this.topic }, 'subscription failed');
    this.subscriber.error(error);
  }

  private dropFetcher(f: PartitionFetcher<V>): void {
    const dropped = f.stop();
    if (!this.stopped) this.queue.settle(dropped);
  }

  private enqueueCommit(fetchers: Iterable<PartitionFetcher<V>>): Promise<void> {
    const list = [...fetchers];
    const run = this.committing.catch(() => undefined).then(() => this.commitNow(list));
    this.committing = run;
    return run;
  }

  private async commitNow(fetchers: readonly PartitionFetcher<V>[]): Promise<void> {
    const due: [PartitionFetcher<V>, CommittedOffset][] = [];
    for (const f of fetchers) {
      if (!f.dirty || this.abandoned.has(f)) continue;
      due.push([f, { topic: this.topic, partition: f.partition, offset: f.tracker.watermark, msgId: f.tracker.lastId }]);
    }
    if (due.length === 0) return;
    await this.deps.offsetStore.commit(this.options.group, due.map(([, c]) => c));
    for (const [f, c] of due) f.committedOffset = c.offset;
  }

  /** The committed offset, or where `startFrom` says (asked from the broker, since retention moves the start). */
  private async startOffset(p: Partition): Promise<StartOffset> {
    const o = this.options;
    if (!o.alwaysStartFromLatest) {
      const c = await this.deps.offsetStore.load(o.group, this.topic, p);
      if (c !== undefined) return { offset: c.offset, msgId: c.msgId, committed: true };
    }
    const latest = o.alwaysStartFromLatest || o.startFrom === 'latest';
    return { offset: await this.brokerOffset(p, latest ? MAX_OFFSET : 0), msgId: -1n, committed: false };
  }

  /** MetaQ's `offset` request: the nearest valid offset (0 gives the first one, MAX_OFFSET the end). */
  private async brokerOffset(p: Partition, offset: number): Promise<number> {
    const o = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.ctx.router.link(p.brokerId, true).request((opaque) => encodeOffset({
          topic: this.topic, group: o.group, partition: p.partition, offset, opaque,
        }), o.fetchTimeoutMs);
        if (r.type !== 'result' || r.code !== 200) throw new BrokerError(r.type === 'result' ? r.code : 0, r.body.toString('utf8'));
        return replyOffset(200, r.body);
      } catch (err) {
        if (this.stopped || !(err instanceof MetaqError && err.retriable)) throw err;
        this.ctx.logger.debug({ err, topic: this.topic, partition: partitionName(p), attempt }, 'offset request failed: retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * attempt, o.maxFetchDelayMs)).unref());
      }
    }
  }
}
