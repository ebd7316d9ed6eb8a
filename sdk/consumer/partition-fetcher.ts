/**
 * The fetch loop of one partition (MetaQ's SimpleFetchManager request, §5.3) and the partition's share of the
 * delivery: a buffer of decoded messages, the in-line retries of nacked ones, and the ack watermark.
 *
 * ```
 * get <topic> <group> <partition> <offset> <fetchSize>
 *   value      decode; a cut last record is normal (the next get starts at it); no whole record: grow fetchSize to fit
 *   404 / 403  nothing new (after the broker's long poll) or closed: wait min(prev + max/10, max), then get again
 *   301 <o>    continue at <o>; the move counts as acked (it is committed)
 *   503 / 504, timeout, connection lost   retriable: back off and retry
 *   other      the subscription errors
 * ```
 * A partition fetches only when its buffer is drained and the subscription has room for more unacked deliveries,
 * so memory stays bounded by one fetch window per partition.
 */
import type { ClientContext } from '../client/client-context.js';
import { BrokerError, ErrorCodes, MessageTooLargeError, MetaqError } from '../errors.js';
import type { Delivery, Partition } from '../message.js';
import type { Response } from '../protocol/commands.js';
import { encodeGet } from '../protocol/encode.js';
import { RECORD_HEADER_SIZE } from '../protocol/record.js';
import type { ResolvedConsumerOptions } from './consumer-options.js';
import { decodeMessages, decodeMessagesSync, type DecodedMessages, type DecodeMessagesOptions, type FetchedMessage } from './decode-messages.js';
import type { DeliveryQueue, DeliverySource } from './delivery-queue.js';
import { replyOffset } from './fetch-once.js';
import { OffsetTracker } from './offset-tracker.js';
import type { ProcessedRange } from './processed-ranges.js';

/**
 * What a fetcher needs from its subscription ({@link TopicSubscription} is the one implementation).
 *
 * @example
 * ```ts
 * const fetcher = new PartitionFetcher(subscription, { brokerId: 0, partition: 1 }, 0, -1n);
 * ```
 */
export interface FetcherHost<V> {
  readonly ctx: ClientContext;
  readonly topic: string;
  readonly options: ResolvedConsumerOptions<V>;
  readonly queue: DeliveryQueue<V>;
  /** False: the message is skipped (acked without delivery): the filter rejects it. */
  accept(message: FetchedMessage<V>): boolean;
  /** A delivered message was acked (processed). */
  processedMessage(message: FetchedMessage<V>): void;
  /** The partition's run already processed by this consumer (skipped when read again); undefined: no filter. */
  processedRange(partition: Partition): ProcessedRange | undefined;
  /** Keeps a message whose in-line retries are exhausted; resolves once it is stored safely. */
  storeFailed(message: FetchedMessage<V>): Promise<void>;
  /** A non-retriable failure: the subscription errors. */
  fail(error: unknown): void;
}

/**
 * A delivery of a partition's message; a small class so that ack/nack live on the prototype, not in closures.
 *
 * @example
 * ```ts
 * consumer.messages$('orders').subscribe((d) => { handle(d.message); d.ack(); });
 * ```
 */
export class PartitionDelivery<V> implements Delivery<V> {
  private settled = false;

  constructor(readonly message: FetchedMessage<V>, private readonly fetcher: PartitionFetcher<V>, readonly seq: number) {}

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.fetcher.acked(this.seq, this.message);
  }

  nack(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.fetcher.nacked(this.message, this.seq, error);
  }
}

interface Retry<V> {
  readonly message: FetchedMessage<V>;
  readonly seq: number;
}

/**
 * One partition's fetch loop, buffer, in-line retries and watermark.
 *
 * @example
 * ```ts
 * const f = new PartitionFetcher(host, { brokerId: 0, partition: 3 }, startOffset, -1n);
 * f.start();
 * // ... later: f.tracker.watermark is what may be committed
 * f.stop();
 * ```
 */
export class PartitionFetcher<V> implements DeliverySource {
  queued = false;
  /** Acked watermark: what a commit stores. */
  readonly tracker: OffsetTracker;
  /** The watermark last committed (or loaded); a commit is due when it differs from tracker.watermark. */
  committedOffset: number;
  /** Next byte to fetch. */
  private offset: number;
  private fetchSize: number;
  private delayMs = 0;
  private fetching = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private buffer: FetchedMessage<V>[] = [];
  private bufIndex = 0;
  /** Deliveries of this partition with the subscriber. */
  private withUser = 0;
  /** Messages of this partition not settled: with the user, waiting for a retry, or being stored. */
  private outstanding = 0;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly retriesDue: Retry<V>[] = [];
  private storing = 0;
  private readonly decodeOptions: DecodeMessagesOptions<V> & { baseOffset: number };
  private readonly kick = (): void => this.maybeFetch();
  private readonly processed: ProcessedRange | undefined;
  /** Where the current contiguous run of this fetcher began (its start, or the last 301 target). */
  private runStart: number;
  private readonly name: string;

  constructor(private readonly host: FetcherHost<V>, readonly partition: Partition, startOffset: number, lastId: bigint,
    committed = true) {
    this.offset = startOffset;
    this.runStart = startOffset;
    this.processed = host.processedRange(partition);
    this.tracker = new OffsetTracker(startOffset, lastId);
    // A start offset that did not come from the store (earliest/latest) is committed at the first chance, so a
    // restart before any message resumes from there rather than asking again (and skipping what came meanwhile).
    this.committedOffset = committed ? startOffset : -1;
    this.fetchSize = host.options.fetchSize;
    this.decodeOptions = {
      topic: host.topic, partition, baseOffset: 0, deserializer: host.options.deserializer,
      // Records above maxFetchSize are refused as too large (growFor), not as corrupt: accept any int32 length here.
      maxMessageSize: 0x7fffffff - RECORD_HEADER_SIZE,
    };
    this.name = `${host.topic}-${partition.brokerId}-${partition.partition}`;
  }

  /** True while a commit of this partition is due. */
  get dirty(): boolean {
    return this.tracker.watermark !== this.committedOffset;
  }

  start(): void {
    this.maybeFetch();
  }

  /** Stops fetching and delivering; a fetch in flight is dropped when it returns. Returns the deliveries given up. */
  stop(): number {
    if (this.stopped) return 0;
    this.stopped = true;
    this.processed?.merge(this.runStart, this.tracker.watermark);
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    this.host.queue.cancelRoom(this.kick);
    this.buffer = [];
    this.bufIndex = 0;
    const dropped = this.withUser;
    this.withUser = 0;
    return dropped;
  }

  emitNext(): void {
    if (this.stopped) return;
    const queue = this.host.queue;
    const retry = this.retriesDue.length === 0 ? undefined : this.retriesDue.shift();
    if (retry !== undefined) {
      this.withUser++;
      queue.emit(new PartitionDelivery(retry.message, this, retry.seq));
    } else if (this.retryTimers.size === 0 && this.storing === 0 &&
      this.outstanding < this.host.options.partitionConcurrency) {
      const buffer = this.buffer;
      while (this.bufIndex < buffer.length) {
        const m = buffer[this.bufIndex]!;
        buffer[this.bufIndex++] = undefined as unknown as FetchedMessage<V>;
        if (this.processed?.contains(m.offset) === true || !this.host.accept(m)) {
          this.tracker.skip(m.nextOffset, m);
          continue;
        }
        const seq = this.tracker.track(m.nextOffset, m);
        this.outstanding++;
        this.withUser++;
        queue.emit(new PartitionDelivery(m, this, seq));
        break;
      }
      if (this.bufIndex >= buffer.length) this.maybeFetch();
    }
    if (this.deliverable()) queue.schedule(this);
  }

  /** @internal from PartitionDelivery.ack */
  acked(seq: number, message: FetchedMessage<V>): void {
    this.tracker.ack(seq);
    this.host.processedMessage(message);
    if (this.stopped) return;
    this.outstanding--;
    this.withUser--;
    const queue = this.host.queue;
    queue.settle();
    if (this.deliverable()) queue.schedule(this);
    queue.pump();
  }

  /** @internal from PartitionDelivery.nack: redeliver in line after MetaQ's delay, or store it and move on. */
  nacked(message: FetchedMessage<V>, seq: number, error: unknown): void {
    if (this.stopped) return;
    this.withUser--;
    this.host.queue.settle();
    const o = this.host.options;
    if (message.redeliveries < o.maxFetchRetries) {
      this.host.ctx.logger.debug({ err: error, partition: this.name, offset: message.offset, redeliveries: message.redeliveries },
        'message nacked: redelivering in line');
      const delay = Math.min((o.maxFetchDelayMs / 10) * (message.redeliveries + 1), o.maxFetchDelayMs);
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        message.redeliveries++;
        this.retriesDue.push({ message, seq });
        this.host.queue.schedule(this);
        this.host.queue.pump();
      }, delay);
      timer.unref();
      this.retryTimers.add(timer);
    } else {
      this.host.ctx.logger.warn({ err: error, partition: this.name, offset: message.offset, redeliveries: message.redeliveries },
        'message failed every in-line retry: moving it to the recover store');
      this.storing++;
      this.host.storeFailed(message).then(() => {
        this.storing--;
        this.outstanding--;
        this.tracker.ack(seq);
        if (this.stopped) return;
        if (this.deliverable()) this.host.queue.schedule(this);
        this.host.queue.pump();
      }, (err: unknown) => this.host.fail(err));
    }
    this.host.queue.pump();
  }

  private deliverable(): boolean {
    if (this.retriesDue.length > 0) return true;
    return this.bufIndex < this.buffer.length && this.retryTimers.size === 0 && this.storing === 0 &&
      this.outstanding < this.host.options.partitionConcurrency;
  }

  private maybeFetch(): void {
    if (this.stopped || this.fetching || this.timer !== undefined || this.bufIndex < this.buffer.length) return;
    const queue = this.host.queue;
    if (!queue.hasRoom) {
      queue.whenRoom(this.kick);
      return;
    }
    this.fetching = true;
    this.fetch().catch((err: unknown) => this.host.fail(err));
  }

  private async fetch(): Promise<void> {
    const { ctx, topic, options } = this.host;
    const offset = this.offset;
    const maxSize = this.fetchSize;
    let res: Response;
    try {
      res = await ctx.router.link(this.partition.brokerId, true).request((opaque) => encodeGet({
        topic, group: options.group, partition: this.partition.partition, offset, maxSize, opaque,
      }), options.fetchTimeoutMs);
    } catch (err) {
      this.fetching = false;
      if (this.stopped) return;
      if (err instanceof MetaqError && err.retriable) {
        ctx.logger.debug({ err, partition: this.name }, 'fetch failed: retrying after a delay');
        return this.later(true);
      }
      throw err;
    }
    if (this.stopped) return;
    if (res.type === 'value') return this.onValue(res.body, offset, maxSize);
    this.fetching = false;
    switch (res.code) {
      case 404:
      case 403:
        return this.later(true);
      case 301: {
        const to = replyOffset(301, res.body);
        ctx.logger.debug({ partition: this.name, from: offset, to }, 'broker moved the fetch offset');
        this.processed?.merge(this.runStart, this.tracker.watermark);
        this.runStart = to;
        this.offset = to;
        this.tracker.skip(to, null);
        this.delayMs = 0;
        return this.maybeFetch();
      }
      default: {
        const err = new BrokerError(res.code, res.body.toString('utf8'));
        if (!err.retriable) throw err;
        return this.later(true);
      }
    }
  }

  private async onValue(body: Buffer, offset: number, maxSize: number): Promise<void> {
    const o = this.decodeOptions;
    o.baseOffset = offset;
    let r: DecodedMessages<V> | undefined = decodeMessagesSync(body, o);
    if (r === undefined) {
      r = await decodeMessages(body, o);
      if (this.stopped) return;
    }
    this.fetching = false;
    if (r.messages.length === 0) return this.growFor(r.nextRecordSize, body.length, offset, maxSize);
    this.offset = offset + r.bytesConsumed;
    this.delayMs = 0;
    const initial = this.host.options.fetchSize;
    if (this.fetchSize > initial && body.length < this.fetchSize / 2) this.fetchSize = Math.max(initial, this.fetchSize >>> 1);
    this.buffer = r.messages;
    this.bufIndex = 0;
    // The fetch ran ahead while the last message of the previous one may still be out: wait for its ack if so.
    if (!this.deliverable()) return;
    this.host.queue.schedule(this);
    this.host.queue.pump();
  }

  /** No whole record in the window: the first record is larger than the fetch size. */
  private growFor(needed: number | undefined, got: number, offset: number, maxSize: number): void {
    const max = this.host.options.maxFetchSize;
    if (needed !== undefined && needed > max) {
      this.host.ctx.logger.error({ partition: this.name, offset, size: needed, maxFetchSize: max }, 'record larger than maxFetchSize');
      throw new MessageTooLargeError(needed, max);
    }
    if (got < maxSize || (needed !== undefined && needed <= maxSize)) {
      // The broker sent less than asked: its maxTransferSize is below the record's size.
      throw new MetaqError(ErrorCodes.MESSAGE_TOO_LARGE,
        `the record at ${this.name} offset ${offset} (${needed ?? '?'} bytes) does not fit in what the broker sends per fetch (${got} bytes)`);
    }
    const grown = Math.min(max, Math.max(needed ?? 0, maxSize * 2));
    this.host.ctx.logger.info({ partition: this.name, offset, from: maxSize, to: grown }, 'growing the fetch size for a large message');
    this.fetchSize = grown;
    this.maybeFetch();
  }

  /** Fetches again after MetaQ's growing delay (or at once when progressing). */
  private later(noData: boolean): void {
    const max = this.host.options.maxFetchDelayMs;
    this.delayMs = noData ? Math.min(this.delayMs + max / 10, max) : 0;
    if (this.delayMs === 0) return this.maybeFetch();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.maybeFetch();
    }, this.delayMs);
    this.timer.unref();
  }
}
