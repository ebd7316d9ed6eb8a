/**
 * The consumer of a group (MetaQ's MessageConsumer, §5.3): `messages$(topic)` as a cold Observable of deliveries,
 * `subscribe(topic, handler)` in listener style, and the group's offsets.
 *
 * Guarantees:
 * - At least once: a partition's offset is committed only up to the first message not yet acked, so a crash or a
 *   restart redelivers and never skips. Commits run every `commitIntervalMs`, on unsubscribe and on close.
 * - Order: one message of a partition is out at a time (`partitionConcurrency` 1), so each partition is handled in
 *   log order. A batching operator such as `bufferCount(n)` then waits forever for its n-th message of a partition:
 *   raise `partitionConcurrency` to at least n (order still holds for emission, not for completion).
 * - Backpressure at the source: partitions fetch only while fewer than `maxInFlight` deliveries are unacked.
 * - A nacked message (or a throwing handler) is redelivered in line `maxFetchRetries` times, the partition waiting;
 *   then it moves to the local recover store (redelivered every `recoverIntervalMs`, then a dead-letter topic) and
 *   the partition goes on.
 *
 * In cluster mode (a client made with `zkConnect`, not broadcast) the consumer is a member of its group in ZooKeeper:
 * partitions are shared with the other members (sdk/cluster/group/group-member.ts) and offsets default to the fenced
 * ZooKeeper store, so that a member that lost a partition cannot overwrite its new owner's offsets. `status$` reports
 * rebalances and session losses.
 */
import { Observable, Subject, type Subscriber } from 'rxjs';
import type { ClientContext } from '../client/client-context.js';
import type { ConsumerOptions } from '../config.js';
import { GroupMember, type GroupStatus } from '../cluster/group/group-member.js';
import { groupFailpoints } from '../cluster/group/group-failpoints.js';
import { FencedError, InvalidArgumentError, ShuttingDownError } from '../errors.js';
import { partitionName, type Delivery, type Message } from '../message.js';
import { LocalFileOffsetStore } from '../offsets/local-file-offset-store.js';
import type { OffsetStore } from '../offsets/offset-store.js';
import { ZkOffsetStore } from '../offsets/zk-offset-store.js';
import { topicNameProblem } from '../protocol/names.js';
import { sortAsStrings } from '../protocol/zk/zk-layout.js';
import { resolveConsumerOptions, type ResolvedConsumerOptions } from './consumer-options.js';
import { ProcessedRanges } from './processed-ranges.js';
import { processIdCache, type DedupeCache } from './dedupe-cache.js';
import { sharedRecoverStore } from './shared-recover.js';
import { TopicSubscription, type FailedMessageStore, type SubscriptionDeps } from './topic-subscription.js';

/**
 * What {@link Consumer.subscribe} returns.
 *
 * @example
 * ```ts
 * const sub: ListenerSubscription = consumer.subscribe('orders', handle);
 * await sub.close(); // stopped and committed
 * ```
 */
export interface ListenerSubscription {
  /** Stops the subscription and resolves after its final offset commit (rejects if that commit failed). */
  close(): Promise<void>;
}

/**
 * A consumer of one group. Made by `client.consumer(options)`.
 *
 * @example
 * ```ts
 * const consumer = client.consumer({ group: 'billing' });
 * consumer.messages$('orders').pipe(
 *   concatMap(async (d) => { await bill(d.message.value); d.ack(); }),
 * ).subscribe();
 * // ...
 * await consumer.close(); // stops, commits
 * ```
 */
export class Consumer<V = Buffer> {
  /** The options with defaults; `group` is the per-host group in broadcast mode. */
  readonly options: ResolvedConsumerOptions<V>;
  private readonly offsetStore: OffsetStore;
  private readonly ownsStore: boolean;
  private readonly processed: ProcessedRanges;
  private readonly idCache: DedupeCache | undefined;
  private readonly subscriptions = new Set<TopicSubscription<V>>();
  /** Subscriptions torn down whose close (final commit included) is still running. */
  private readonly closingSubs = new Map<TopicSubscription<V>, Promise<void>>();
  /** Torn-down subscriptions whose final commit failed: commit() and close() retry it. */
  private readonly uncommitted = new Set<TopicSubscription<V>>();
  private readonly unregister: () => void;
  private closing: Promise<void> | undefined;
  /** Cluster mode: this consumer's membership of its group. */
  private readonly member: GroupMember | undefined;
  private readonly status = new Subject<ConsumerStatus>();

  constructor(private readonly ctx: ClientContext, options: ConsumerOptions<V>) {
    if (ctx.closing) throw new ShuttingDownError('the client');
    this.options = resolveConsumerOptions(options);
    this.ownsStore = options.offsetStore === undefined;
    const cluster = this.options.broadcast ? undefined : ctx.cluster;
    let zkStore: ZkOffsetStore | undefined;
    if (cluster !== undefined && options.offsetStore === undefined) {
      zkStore = new ZkOffsetStore(cluster.zk, cluster.paths, { unfenced: groupFailpoints.unfencedCommits === true });
    }
    this.offsetStore = options.offsetStore ?? zkStore ?? LocalFileOffsetStore.forFile(ctx.options.offsetsFile);
    if (cluster !== undefined) {
      const o = this.options;
      this.member = new GroupMember({
        zk: cluster.zk, paths: cluster.paths, group: o.group, consumerId: o.consumerId,
        strategy: o.loadBalanceStrategy, retries: o.rebalanceRetries, backoffMs: o.rebalanceBackoffMs,
        logger: ctx.logger, store: zkStore, onStatus: (st) => this.status.next(st),
      });
    }
    this.processed = new ProcessedRanges();
    this.idCache = this.options.dedupeCacheSize > 0 ? processIdCache(this.options.dedupeCacheSize) : undefined;
    this.unregister = ctx.own(this);
  }

  /** The group used with brokers and stores. */
  get group(): string {
    return this.options.group;
  }

  /**
   * Cluster mode: `<group>_<consumerId>`, this consumer's name in ZooKeeper (its ids node, the data of the owner
   * nodes it holds); undefined otherwise.
   */
  get memberId(): string | undefined {
    return this.member?.id;
  }

  /**
   * Events of the group membership (cluster mode; nothing otherwise): `rebalanced` with the partitions owned,
   * `session-expired`, `rejoined`, `rebalance-failed`, `fenced`. Hot: a subscriber sees the events after it
   * subscribed; completes when the consumer closes.
   *
   * @example
   * ```ts
   * consumer.status$.subscribe((s) => { if (s.type === 'session-expired') log.warn('partitions dropped'); });
   * ```
   */
  get status$(): Observable<ConsumerStatus> {
    return this.status.asObservable();
  }

  /**
   * The partitions being read now, per topic (`"<brokerId>-<n>"`, sorted as strings).
   *
   * @example
   * ```ts
   * consumer.assignment(); // { orders: ['0-0', '0-1'] }
   * ```
   */
  assignment(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const s of this.subscriptions) out[s.topic] = sortAsStrings(s.assigned.map(partitionName));
    return out;
  }

  /**
   * A cold Observable of the topic's messages: each subscription reads every partition from the group's committed
   * offsets (or `startFrom`), and unsubscribing stops reading and commits what was acked. Ack every delivery
   * (`d.ack()`), or `d.nack(err)` to have it redelivered. One subscription per topic at a time.
   *
   * @example
   * ```ts
   * consumer.messages$('orders').pipe(
   *   mergeMap(async (d) => { await handle(d.message); d.ack(); }, 16),
   * ).subscribe({ error: (e) => log.error(e) });
   * ```
   */
  messages$(topic: string): Observable<Delivery<V>> {
    return this.observe(topic, undefined);
  }

  /**
   * Listener style: `handler` runs for every message; returning (or resolving) acks it, throwing (or rejecting)
   * nacks it, which redelivers it in line and then moves it to the recover store.
   *
   * @example
   * ```ts
   * const sub = consumer.subscribe('orders', async (m) => { await bill(JSON.parse(m.value.toString())); });
   * // ...
   * await sub.close();
   * ```
   */
  subscribe(topic: string, handler: (message: Message<V>) => unknown): ListenerSubscription {
    let opened: TopicSubscription<V> | undefined;
    const subscription = this.observe(topic, (s) => { opened = s; }).subscribe({
      next: (d) => runHandler(d, handler),
      error: (err: unknown) => this.ctx.logger.error({ err, topic, group: this.group }, 'listener subscription stopped'),
    });
    return {
      close: async () => {
        subscription.unsubscribe();
        if (opened !== undefined) await this.closingSubs.get(opened);
      },
    };
  }

  /**
   * The offset last committed (or loaded from the offset store) of each partition of `topic` being read now, by
   * partition name; null for a partition read from `startFrom` with nothing committed yet. Empty when the topic is
   * not subscribed.
   *
   * @example
   * ```ts
   * await consumer.commit();
   * consumer.committed('orders'); // { '0-0': 1240, '0-1': null }
   * ```
   */
  committed(topic: string): Record<string, number | null> {
    for (const s of this.subscriptions) if (s.topic === topic) return s.committedOffsets();
    return {};
  }

  /**
   * Commits the acked watermark of every partition being read, after the final commits of subscriptions being torn
   * down (and retries those that failed).
   *
   * @example
   * ```ts
   * await consumer.commit();
   * ```
   */
  async commit(): Promise<void> {
    await Promise.allSettled(this.closingSubs.values());
    await Promise.all([...this.subscriptions, ...this.uncommitted].map(async (s) => {
      await s.commit();
      this.uncommitted.delete(s);
    }));
  }

  /**
   * Stops every subscription (their Observables complete), commits, and closes the offset store it opened. Rejects
   * with the first final-commit failure.
   *
   * @example
   * ```ts
   * await consumer.close();
   * ```
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const s of [...this.subscriptions]) s.complete();
      await Promise.allSettled(this.closingSubs.values());
      const failures: unknown[] = [];
      for (const s of this.uncommitted) {
        try {
          await s.commit();
        } catch (err) {
          failures.push(err);
        }
      }
      this.uncommitted.clear();
      try {
        await this.member?.close();
      } catch (err) {
        failures.push(err);
      }
      if (this.ownsStore) await this.offsetStore.close();
      this.status.complete();
      this.unregister();
      if (failures.length > 0) throw failures[0];
    })();
    return this.closing;
  }

  private observe(topic: string, onOpen: ((s: TopicSubscription<V>) => void) | undefined): Observable<Delivery<V>> {
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    return new Observable<Delivery<V>>((subscriber) => {
      if (this.closing !== undefined) {
        subscriber.error(new ShuttingDownError('the consumer'));
        return undefined;
      }
      for (const s of this.subscriptions) {
        if (s.topic === topic) {
          subscriber.error(new InvalidArgumentError(`consumer group ${this.group} is already subscribed to ${topic}`));
          return undefined;
        }
      }
      const sub = this.open(topic, subscriber);
      onOpen?.(sub);
      return () => {
        this.subscriptions.delete(sub);
        const member = this.member;
        // A group member releases the topic's partitions only after the final commit (made while still the owner).
        const closing = sub.close();
        const closed = member === undefined ? closing : Promise.all([closing, member.removeTopic(sub, closing)]).then(() => undefined);
        this.closingSubs.set(sub, closed);
        closed.then(() => { this.closingSubs.delete(sub); }, (err: unknown) => {
          this.closingSubs.delete(sub);
          // A refused commit is final: the partition's new owner has the say over its offset.
          if (!(err instanceof FencedError)) this.uncommitted.add(sub);
          this.ctx.logger.warn({ err, topic, group: this.group }, 'final offset commit failed; retried by commit() and close()');
        });
      };
    });
  }

  private open(topic: string, subscriber: Subscriber<Delivery<V>>): TopicSubscription<V> {
    const deps: SubscriptionDeps<V> = {
      ctx: this.ctx,
      options: this.options,
      offsetStore: this.offsetStore,
      processed: this.processed,
      idCache: this.idCache,
      makeRecoverStore: (t, redeliver) => this.makeRecoverStore(t, redeliver),
      ready: Promise.allSettled(this.closingSubs.values()),
      assignAll: this.member === undefined,
    };
    const sub = new TopicSubscription<V>(deps, topic, subscriber);
    this.subscriptions.add(sub);
    sub.start();
    this.member?.addTopic(sub);
    return sub;
  }

  private makeRecoverStore(topic: string, redeliver: (message: Message<V>) => Promise<void>): FailedMessageStore<V> {
    const o = this.options;
    return sharedRecoverStore<V>({
      ctx: this.ctx, topic, group: o.group, intervalMs: o.recoverIntervalMs, maxAttempts: o.maxRecoverAttempts,
      deadLetterTopic: o.deadLetterTopic(topic), deserializer: o.deserializer, redeliver,
    });
  }
}

/**
 * What {@link Consumer.status$} emits (cluster mode).
 *
 * @example
 * ```ts
 * const s: ConsumerStatus = { type: 'rebalanced', assignment: { orders: ['0-0', '0-1'] } };
 * ```
 */
export type ConsumerStatus = GroupStatus;

/** Runs a listener: a value acks, a throw or a rejection nacks. No promise is made for a synchronous handler. */
function runHandler<V>(d: Delivery<V>, handler: (message: Message<V>) => unknown): void {
  let r: unknown;
  try {
    r = handler(d.message);
  } catch (err) {
    d.nack(err);
    return;
  }
  if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') {
    (r as PromiseLike<unknown>).then(() => d.ack(), (err: unknown) => d.nack(err));
  } else {
    d.ack();
  }
}
