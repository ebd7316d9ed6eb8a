/**
 * A spout over a consumer group, in the shape of Storm's ISpout (open, nextTuple, ack, fail, activate, deactivate,
 * close), with a Node Readable and an Observable as other faces ({@link MetaqSpout.stream}, {@link MetaqSpout.tuples$})
 * and Storm's multilang protocol as a third (spout/multilang.ts).
 *
 * What it promises:
 * - At least once. A tuple's message is acked to the consumer only when the tuple is acked, and the consumer commits a
 *   partition's offset only up to its first message not acked: the committed offset never passes a pending tuple.
 * - Replays after a crash are bounded by `maxPending`. The spout counts, per partition, the messages it emitted at or
 *   beyond the partition's committed offset, and emits nothing more while that count (over all partitions) is at
 *   `maxPending`; passing half of it starts a commit of what was acked. A restart replays only messages at or beyond the
 *   committed offsets, so it re-emits at most `maxPending` messages emitted before. The count of pending tuples (emitted,
 *   not acked) is bounded by the same cap.
 * - A failed tuple is emitted again (same id) after the consumer's redelivery delay, up to `maxReplays` times; one more
 *   failure hands the message to the consumer's recover store (local disk, redelivered later as a new tuple, then the
 *   dead-letter topic) and its partition goes on.
 *
 * MetaQ's own Storm spout (metaq-1.4.md §6.1) blocks the fetch thread on each message until Storm acks it, so each
 * partition has one tuple in flight, and replays a failed tuple forever; this one keeps up to `maxPending` in flight
 * over all partitions and bounds the replays.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import { Readable } from 'node:stream';
import { Observable, type Subscription } from 'rxjs';
import {
  CONSUMER_DEFAULTS, createClient, InvalidArgumentError, MetaqClient, partitionName, ShuttingDownError,
  type ClientOptions, type Consumer, type ConsumerOptions, type Delivery, type Message,
} from '../sdk/index.js';

/**
 * Options of {@link MetaqSpout}.
 *
 * @example
 * ```ts
 * const options: SpoutOptions = { client: { serverUrl: 'meta://127.0.0.1:8123' }, topic: 'words', group: 'wc' };
 * ```
 */
export interface SpoutOptions<V = Buffer> {
  /** A client to read with (the spout does not close it), or the options of one the spout makes and closes. */
  readonly client: MetaqClient | ClientOptions;
  readonly topic: string;
  readonly group: string;
  /** Tuples emitted and not yet acked, and messages emitted beyond the committed offsets, at most; default 1000. */
  readonly maxPending?: number;
  /** Times a failed tuple is emitted again before it goes to the recover store; default 5. */
  readonly maxReplays?: number;
  /** A tuple's values (Storm's Scheme); default `[message.value]`. */
  readonly toValues?: (message: Message<V>) => unknown[];
  /**
   * Other options of the consumer. `maxInFlight`, `partitionConcurrency` and `maxFetchRetries` are the spout's
   * (from maxPending and maxReplays).
   */
  readonly consumer?: Omit<ConsumerOptions<V>, 'group' | 'maxInFlight' | 'partitionConcurrency' | 'maxFetchRetries'>;
  /** Default: the client's logger when the spout makes the client, else pino at `warn` on stderr. */
  readonly logger?: Logger;
}

/**
 * The spout's figures, from {@link MetaqSpout.stats}.
 *
 * @example
 * ```ts
 * const s: SpoutStats = spout.stats();
 * console.log(s.pending, s.beyondCommit, s.partitions['0-1']?.pending);
 * ```
 */
export interface SpoutStats {
  /** Tuples emitted and neither acked nor failed. */
  readonly pending: number;
  /** Messages emitted at or beyond their partition's committed offset (what a crash now would replay at most). */
  readonly beyondCommit: number;
  /** Messages received from the consumer and not emitted yet. */
  readonly ready: number;
  readonly emitted: number;
  readonly acked: number;
  readonly failed: number;
  /** Emits of a message emitted before (a replay after a fail, or a redelivery from the recover store). */
  readonly replayed: number;
  /** Messages handed to the recover store after their last replay failed. */
  readonly recovered: number;
  readonly partitions: Record<string, { readonly pending: number; readonly beyondCommit: number }>;
}

/**
 * One emitted tuple. `ack()` and `fail()` settle it (the same as the spout's `ack(id)` / `fail(id)`); only the first
 * call counts.
 *
 * @example
 * ```ts
 * const t = spout.nextTuple();
 * if (t !== undefined) { handle(t.values); t.ack(); }
 * ```
 */
export class SpoutTuple<V = Buffer> {
  /** @internal */
  constructor(readonly id: string, readonly values: unknown[], readonly message: Message<V>,
    private readonly spout: MetaqSpout<V>, readonly delivery: Delivery<V>, /** @internal */ readonly book: PartitionBook) {}

  ack(): void {
    this.spout.settle(this, true, undefined);
  }

  fail(error?: unknown): void {
    this.spout.settle(this, false, error);
  }
}

/** Per partition: what was emitted beyond the committed offset, and the pending count. */
class PartitionBook {
  /** Offsets of distinct messages emitted and not yet known committed, ascending, from `head`. */
  offsets: number[] = [];
  head = 0;
  /** Highest offset emitted: a message at or below it was emitted before (a replay). */
  lastEmitted = -1;
  pending = 0;

  get beyondCommit(): number {
    return this.offsets.length - this.head;
  }

  /** Forgets what was emitted (the partition left this member; pending tuples of it may still be settled). */
  reset(): void {
    this.offsets = [];
    this.head = 0;
    this.lastEmitted = -1;
  }

  /** Drops the offsets below `committed`; returns how many. */
  trim(committed: number): number {
    const start = this.head;
    while (this.head < this.offsets.length && this.offsets[this.head]! < committed) this.head++;
    const trimmed = this.head - start;
    if (this.head > 1024 && this.head * 2 > this.offsets.length) {
      this.offsets = this.offsets.slice(this.head);
      this.head = 0;
    }
    return trimmed;
  }
}

const State = { New: 0, Open: 1, Closed: 2 } as const;

/**
 * Storm's ISpout over one topic of a consumer group.
 *
 * @example
 * ```ts
 * const spout = new MetaqSpout({ client: { serverUrl: 'meta://127.0.0.1:8123' }, topic: 'words', group: 'wc' });
 * await spout.open();
 * for (;;) {
 *   const t = spout.nextTuple();
 *   if (t === undefined) { await spout.ready(50); continue; }
 *   process(t.values).then(() => spout.ack(t.id), (err) => spout.fail(t.id, err));
 * }
 * ```
 */
export class MetaqSpout<V = Buffer> {
  readonly topic: string;
  readonly group: string;
  readonly maxPending: number;
  readonly maxReplays: number;
  /** Emitted beyond the committed offsets from which an ack starts a commit: half the cap, so it is rarely reached. */
  private readonly commitAt: number;
  private readonly toValues: (message: Message<V>) => unknown[];
  private state: number = State.New;
  private opening: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private active = true;
  private failure: unknown;
  private client: MetaqClient | undefined;
  private consumer: Consumer<V> | undefined;
  private subscriptions: Subscription[] = [];
  private readonly logger: Logger;
  /** Deliveries received and not emitted, from `readyHead`. */
  private readyList: (Delivery<V> | undefined)[] = [];
  private readyHead = 0;
  private readonly pendingById = new Map<string, SpoutTuple<V>>();
  private readonly books = new Map<string, PartitionBook>();
  private beyond = 0;
  private acksSinceCommit = 0;
  private committing: Promise<void> | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private counts = { emitted: 0, acked: 0, failed: 0, replayed: 0, recovered: 0 };

  constructor(private readonly options: SpoutOptions<V>) {
    this.topic = options.topic;
    this.group = options.group;
    this.maxPending = options.maxPending ?? 1000;
    this.maxReplays = options.maxReplays ?? 5;
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) {
      throw new InvalidArgumentError(`maxPending must be a positive integer, got ${this.maxPending}`);
    }
    if (!Number.isInteger(this.maxReplays) || this.maxReplays < 0) {
      throw new InvalidArgumentError(`maxReplays must be an integer >= 0, got ${this.maxReplays}`);
    }
    this.commitAt = Math.ceil(this.maxPending / 2);
    this.toValues = options.toValues ?? ((m) => [m.value]);
    const clientLogger = options.client instanceof MetaqClient ? undefined : options.client.logger;
    this.logger = options.logger ?? clientLogger ??
      pino({ level: process.env.METAQ_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  }

  /** Connects (when given client options), joins the group and starts reading. Idempotent. */
  open(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new ShuttingDownError('the spout'));
    this.opening ??= this.start();
    return this.opening;
  }

  /**
   * The next tuple to emit, or undefined when there is none now (nothing received, deactivated, or `maxPending`
   * reached). Throws the error that stopped the consumer, if one did.
   */
  nextTuple(): SpoutTuple<V> | undefined {
    if (this.failure !== undefined) throw this.failure;
    while (this.state === State.Open && this.active && this.readyHead < this.readyList.length) {
      if (this.outstanding() >= this.maxPending) {
        this.commitSoon();
        return undefined;
      }
      const d = this.readyList[this.readyHead]!;
      this.readyList[this.readyHead++] = undefined;
      if (this.readyHead === this.readyList.length) {
        this.readyList = [];
        this.readyHead = 0;
      }
      const t = this.emit(d);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  /** Acks the pending tuple `id` (an unknown id is ignored: a tuple of an earlier run, or one settled already). */
  ack(id: string): void {
    const t = this.pendingById.get(id);
    if (t !== undefined) this.settle(t, true, undefined);
  }

  /** Fails the pending tuple `id`: it is emitted again later, or after `maxReplays` goes to the recover store. */
  fail(id: string, error?: unknown): void {
    const t = this.pendingById.get(id);
    if (t !== undefined) this.settle(t, false, error);
  }

  /** Emitting resumes (Storm calls it when the topology is activated; a spout starts active). */
  activate(): void {
    this.active = true;
    this.wake();
  }

  /** Emitting stops; acks and fails still count, and what was acked is committed. */
  deactivate(): void {
    this.active = false;
    this.commitSoon();
  }

  /**
   * Resolves true once {@link nextTuple} may return a tuple, false after `timeoutMs` without one; resolves at once when
   * the spout failed or closed (nextTuple then throws or returns undefined).
   */
  ready(timeoutMs = Infinity): Promise<boolean> {
    if (this.canEmit() || this.failure !== undefined || this.state === State.Closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(waiter);
      if (timeoutMs !== Infinity) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  /** True once closed (or closing). */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Stops reading, commits what was acked (pending tuples stay uncommitted: a restart replays them), and closes the
   * client if the spout made it. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.active = false;
      // After the open: a start() under way sets the timer.
      await this.opening?.catch(() => undefined);
      clearInterval(this.commitTimer);
      this.state = State.Closed;
      this.wake();
      for (const s of this.subscriptions) s.unsubscribe();
      try {
        await this.committing;
        await this.consumer?.close();
      } finally {
        if (!(this.options.client instanceof MetaqClient)) await this.client?.close();
      }
    })();
    return this.closing;
  }

  /**
   * The Node face: an objectMode Readable of tuples (highWaterMark = maxPending) that opens the spout when first read
   * and closes it when destroyed; it ends when the spout closes. Ack or fail each tuple.
   *
   * @example
   * ```ts
   * await pipeline(spout.stream(), new Writable({ objectMode: true, write(t, _e, cb) { save(t.values); t.ack(); cb(); } }));
   * ```
   */
  stream(): Readable {
    let pulling = false;
    const readable: Readable = new Readable({
      objectMode: true,
      highWaterMark: this.maxPending,
      read: () => {
        if (pulling) return;
        pulling = true;
        this.pull((t) => readable.push(t)).then((ended) => {
          pulling = false;
          if (ended) readable.push(null);
        }, (err: unknown) => readable.destroy(err as Error));
      },
      destroy: (err, callback) => {
        this.close().then(() => callback(err), (closeErr: unknown) => callback(err ?? closeErr as Error));
      },
    });
    return readable;
  }

  /**
   * The Observable face, like the SDK's `messages$`: subscribing opens the spout, each tuple is emitted for the
   * subscriber to ack or fail (at most maxPending pending), and unsubscribing closes the spout (committing what was
   * acked). Completes when the spout is closed.
   *
   * @example
   * ```ts
   * spout.tuples$().pipe(mergeMap(async (t) => { await save(t.values); t.ack(); }, 64)).subscribe();
   * ```
   */
  tuples$(): Observable<SpoutTuple<V>> {
    return new Observable<SpoutTuple<V>>((subscriber) => {
      this.pull((t) => {
        subscriber.next(t);
        return !subscriber.closed;
      }).then((ended) => {
        if (ended) subscriber.complete();
      }, (err: unknown) => subscriber.error(err));
      return () => {
        this.close().catch((err: unknown) => this.logger.warn({ err, topic: this.topic }, 'spout close failed'));
      };
    });
  }

  /** Pending tuples, replays, and what was emitted beyond the committed offsets, overall and per partition. */
  stats(): SpoutStats {
    const partitions: Record<string, { pending: number; beyondCommit: number }> = {};
    for (const [name, b] of this.books) partitions[name] = { pending: b.pending, beyondCommit: b.beyondCommit };
    return {
      pending: this.pendingById.size, beyondCommit: this.beyond, ready: this.readyList.length - this.readyHead,
      ...this.counts, partitions,
    };
  }

  /** @internal from SpoutTuple: acks or fails a tuple still pending. */
  settle(t: SpoutTuple<V>, ok: boolean, error: unknown): void {
    if (this.pendingById.get(t.id) !== t) return;
    this.pendingById.delete(t.id);
    // The book outlives its pending tuples: trim() drops a book only when none of its tuples is pending.
    t.book.pending--;
    if (ok) {
      this.counts.acked++;
      this.acksSinceCommit++;
      t.delivery.ack();
      if (this.beyond >= this.commitAt) this.commitSoon();
    } else {
      this.counts.failed++;
      if (t.message.redeliveries >= this.maxReplays) this.counts.recovered++;
      t.delivery.nack(error ?? new Error(`tuple ${t.id} failed`));
    }
  }

  /**
   * Opens the spout, then hands tuples to `sink` as they come until it returns false (resolves false) or the spout
   * closes (resolves true). Rejects with the consumer's error.
   */
  private async pull(sink: (t: SpoutTuple<V>) => boolean): Promise<boolean> {
    await this.open();
    for (;;) {
      for (let t = this.nextTuple(); t !== undefined; t = this.nextTuple()) {
        if (!sink(t)) return false;
      }
      if (this.state === State.Closed) return true;
      await this.ready();
    }
  }

  private async start(): Promise<void> {
    const given = this.options.client;
    let client: MetaqClient;
    if (given instanceof MetaqClient) {
      client = given;
    } else {
      client = await createClient({ logger: this.logger, ...given });
    }
    this.client = client;
    const consumer = client.consumer<V>({
      ...this.options.consumer,
      group: this.group,
      maxInFlight: this.maxPending,
      partitionConcurrency: this.maxPending,
      maxFetchRetries: this.maxReplays,
    });
    this.consumer = consumer;
    this.subscriptions.push(consumer.messages$(this.topic).subscribe({
      next: (d) => {
        this.readyList.push(d);
        if (this.readyList.length - this.readyHead === 1) this.wake();
      },
      error: (err: unknown) => {
        this.logger.error({ err, topic: this.topic, group: this.group }, 'spout consumer failed');
        this.failure = err;
        this.wake();
      },
    }));
    // A partition leaving this member takes its book with it (its new owner resumes from its committed offset).
    this.subscriptions.push(consumer.status$.subscribe((s) => {
      if (s.type === 'rebalanced' || s.type === 'session-expired') this.trim();
    }));
    const intervalMs = this.options.consumer?.commitIntervalMs ?? CONSUMER_DEFAULTS.commitIntervalMs;
    this.commitTimer = setInterval(() => this.commitSoon(), intervalMs);
    this.commitTimer.unref();
    if (this.closing !== undefined) return;
    this.state = State.Open;
    this.wake();
  }

  /** Makes the tuple of a delivery; undefined (and the message failed) when `toValues` throws. */
  private emit(d: Delivery<V>): SpoutTuple<V> | undefined {
    const m = d.message;
    const name = partitionName(m.partition);
    let book = this.books.get(name);
    if (book === undefined) {
      book = new PartitionBook();
      this.books.set(name, book);
    }
    if (m.offset > book.lastEmitted) {
      book.offsets.push(m.offset);
      book.lastEmitted = m.offset;
      this.beyond++;
    } else {
      this.counts.replayed++;
    }
    book.pending++;
    let id = `${name}@${m.offset}`;
    // The same message twice at once: its partition was revoked and assigned back while a tuple of it was pending.
    for (let n = 2; this.pendingById.has(id); n++) id = `${name}@${m.offset}#${n}`;
    let values: unknown[];
    try {
      values = this.toValues(m);
    } catch (err) {
      this.logger.error({ err, topic: this.topic, partition: name, offset: m.offset }, 'toValues threw: the message fails');
      book.pending--;
      this.counts.failed++;
      d.nack(err);
      return undefined;
    }
    const t = new SpoutTuple<V>(id, values, m, this, d, book);
    this.pendingById.set(id, t);
    this.counts.emitted++;
    return t;
  }

  private outstanding(): number {
    return Math.max(this.pendingById.size, this.beyond);
  }

  private canEmit(): boolean {
    return this.state === State.Open && this.active && this.readyHead < this.readyList.length &&
      this.outstanding() < this.maxPending;
  }

  /** Commits what was acked and frees the room it covered; one commit at a time, another at once if acks came. */
  private commitSoon(): void {
    if (this.committing !== undefined || this.acksSinceCommit === 0 || this.consumer === undefined) return;
    const consumer = this.consumer;
    this.acksSinceCommit = 0;
    this.committing = consumer.commit().then(() => this.trim(), (err: unknown) => {
      this.logger.warn({ err, topic: this.topic, group: this.group }, 'spout offset commit failed; retried later');
    }).finally(() => {
      this.committing = undefined;
      if (this.beyond >= this.commitAt) this.commitSoon();
    });
  }

  /** Forgets the emitted messages the committed offsets cover, and the books of partitions no longer read. */
  private trim(): void {
    const committed = this.consumer?.committed(this.topic) ?? {};
    for (const [name, book] of this.books) {
      const c = committed[name];
      if (c === undefined) {
        this.beyond -= book.beyondCommit;
        if (book.pending === 0) this.books.delete(name);
        else book.reset();
      } else if (c !== null) {
        this.beyond -= book.trim(c);
      }
    }
    this.wake();
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    if (!this.canEmit() && this.failure === undefined && this.state !== State.Closed) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
