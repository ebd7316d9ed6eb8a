/**
 * The producer: `send` one record and get its SendResult, or pipe a stream through `sendAll()`.
 *
 * Guarantees: a send resolves only once the broker answered `result 200` (stored, per the broker's flush mode);
 * any other answer rejects with a typed MetaqError and nothing is resent automatically (as MetaQ, MAX_RETRY = 1;
 * the caller decides by `retriable`). Records go out in the order `send` was called: the sends of one tick leave
 * in one socket write, at most `maxInFlight` wait for their answers, and later ones queue in order.
 */
import type { ClientContext } from '../client/client-context.js';
import { CompressionTypes, compressPayload, flagWithCompression, type CompressionType } from '../codec/compression.js';
import { defaultSerializer, type Serializer } from '../codec/serializers.js';
import { PRODUCER_DEFAULTS, type ProducerOptions } from '../config.js';
import { InvalidArgumentError, MessageTooLargeError, ShuttingDownError } from '../errors.js';
import type { Partition, ProducerRecord, SendResult } from '../message.js';
import type { Response } from '../protocol/commands.js';
import { parsePutResult } from '../protocol/message-id.js';
import { crc32Masked, encodePayload } from '../protocol/record.js';
import type { Observable, OperatorFunction } from 'rxjs';
import { partitionSelector, type PartitionSelector } from './partition-selector.js';
import { putError } from './put-errors.js';
import { encodePutFrame } from '../protocol/put-frame.js';
import { SendQueue, type QueuedSend } from './send-queue.js';
import { sendAll, type SendAllOptions } from './send-all.js';
import { TopicCache, type TopicState } from './topic-cache.js';
import { newSessionId, type TransactionalPut, type TransactionHost } from './transaction-commands.js';
import { Transaction, type TransactionOptions } from './transaction.js';
import { XaResource, type XaResourceOptions } from './xa-resource.js';

/** How long `close()` waits for the answers of sends already made, beyond the send timeout. */
const CLOSE_GRACE_MS = 1000;

/**
 * Sends records to a topic's partitions. Made by `client.producer(options)`; closed by `close()` or with its client.
 *
 * @example
 * ```ts
 * const producer = client.producer({ partitioner: 'hash' });
 * const r = await producer.send({ topic: 'orders', key: 'customer-7', value: JSON.stringify(order) });
 * console.log(r.id, r.partition.partition, r.offset);
 * await producer.close();
 * ```
 */
export class Producer<V = Buffer | string> {
  private readonly selector: PartitionSelector;
  private readonly serialize: Serializer<V>;
  private readonly compression: CompressionType;
  private readonly maxMessageSize: number;
  private readonly timeoutMs: number;
  /** Sends awaiting an answer (at most maxInFlight). */
  private inFlight = 0;
  private readonly queue: SendQueue<V>;
  private readonly topics: TopicCache;
  private closing: Promise<void> | undefined;
  private idle: (() => void) | undefined;
  private readonly unregister: () => void;
  private maxSeen = 0;
  readonly maxInFlight: number;

  constructor(private readonly ctx: ClientContext, options: ProducerOptions<V> = {}) {
    this.selector = partitionSelector(options.partitioner ?? PRODUCER_DEFAULTS.partitioner);
    this.serialize = options.serializer ?? (defaultSerializer as Serializer<unknown> as Serializer<V>);
    this.compression = options.compression ?? CompressionTypes.None;
    flagWithCompression(0, this.compression); // validates the option
    this.maxInFlight = positive(options.maxInFlight ?? PRODUCER_DEFAULTS.maxInFlight, 'maxInFlight');
    this.maxMessageSize = positive(options.maxMessageSize ?? PRODUCER_DEFAULTS.maxMessageSize, 'maxMessageSize');
    this.timeoutMs = positive(options.sendTimeoutMs ?? ctx.options.requestTimeoutMs, 'sendTimeoutMs');
    this.topics = new TopicCache(ctx.router, ctx.logger, options.defaultTopic);
    this.queue = new SendQueue();
    this.unregister = ctx.own(this);
  }

  /** The largest number of sends that awaited their answers at once (for tests and tuning). */
  get maxInFlightObserved(): number {
    return this.maxSeen;
  }

  /** Sends awaiting their answer now. */
  get pending(): number {
    return this.inFlight + this.queue.length;
  }

  /**
   * Sends one record and resolves with where the broker stored it. Rejects with InvalidArgumentError (bad topic
   * name, missing value), MessageTooLargeError (checked before sending, and by the broker), UnknownTopicError,
   * WrongPartitionError, PartitionClosedError, BrokerError, TimeoutError / ConnectionError (retriable: the
   * record may or may not have been stored), ShuttingDownError after `close()`.
   *
   * @example
   * ```ts
   * const { id, partition, offset } = await producer.send({ topic: 'orders', value: 'hello', attribute: 'v1' });
   * ```
   */
  send(record: ProducerRecord<V>): Promise<SendResult> {
    if (this.closing !== undefined || this.ctx.closing) return Promise.reject(new ShuttingDownError('the producer'));
    let topic: TopicState;
    let payload: Buffer;
    try {
      topic = this.topics.get(record.topic);
      payload = this.checkedPayload(record);
    } catch (e) {
      return Promise.reject(e);
    }
    const compression = record.compression ?? this.compression;
    if (compression === CompressionTypes.None && this.queue.length === 0 && this.inFlight < this.maxInFlight &&
        topic.partitions !== undefined) {
      // The hot path: no await between here and the socket write.
      try {
        if (record.attribute === undefined) return this.dispatch(topic, this.choose(topic, record), 0, payload);
        const data = encodePayload(payload, record.attribute);
        return this.dispatch(topic, this.choose(topic, record), data.flag, data.data);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      const q: QueuedSend<V> = { topic, record, payload, compression, flag: 0, data: undefined, error: undefined,
        ready: false, resolve, reject };
      this.queue.push(q);
      void this.prepare(q);
    });
  }

  /**
   * An operator sending every record of a stream: up to `maxInFlight` sends pipelined (default this producer's
   * `maxInFlight`), results in input order, an error at the first failed send (after the results before it), completion
   * once the source completed and every send was answered. Unsubscribing stops sending.
   *
   * @example
   * ```ts
   * from(records).pipe(producer.sendAll({ maxInFlight: 1000 })).subscribe((r) => console.log(r.offset));
   * ```
   */
  sendAll(options: SendAllOptions = {}): OperatorFunction<ProducerRecord<V>, SendResult> {
    return (source: Observable<ProducerRecord<V>>) => source.pipe(sendAll(this, options));
  }

  /**
   * A local transaction (MetaQ §5.2). Nothing goes to the broker until its first send; see {@link Transaction}.
   *
   * @example
   * ```ts
   * const tx = producer.beginTransaction({ timeoutSec: 10 });
   * await tx.send({ topic: 'orders', value: 'a' });
   * await tx.commit();
   * ```
   */
  beginTransaction(options: TransactionOptions = {}): Transaction<V> {
    if (this.closing !== undefined || this.ctx.closing) throw new ShuttingDownError('the producer');
    const host = this.transactionHost();
    this.txCounter = this.txCounter >= 0x7fffffff ? 1 : this.txCounter + 1;
    return new Transaction(host, `TX:${host.sessionId}:${this.txCounter}`, options);
  }

  /**
   * Runs `fn` in a local transaction: commits when the promise it returns resolves, rolls back when it rejects (and
   * rethrows). Resolves with what `fn` resolved with, once committed.
   *
   * @example
   * ```ts
   * await producer.transaction(async (tx) => {
   *   await tx.send({ topic: 'orders', value: 'a' });
   *   await tx.send({ topic: 'orders', value: 'b' });
   * });
   * ```
   */
  async transaction<T>(fn: (tx: Transaction<V>) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const tx = this.beginTransaction(options);
    let result: T;
    try {
      result = await fn(tx);
    } catch (e) {
      if (tx.state === 'open' || tx.state === 'failed') {
        await tx.rollback().catch((err: unknown) => this.ctx.logger.warn({ err, tx: tx.key }, 'rollback failed'));
      }
      throw e;
    }
    if (tx.state === 'open') await tx.commit();
    return result;
  }

  /**
   * An XA resource (JTA's XAResource) whose branches put this producer's records; see {@link XaResource}.
   *
   * @example
   * ```ts
   * const xa = producer.xaResource({ uniqueQualifier: 'orders-service-1' });
   * await xa.start(xid);
   * await xa.send({ topic: 'orders', value: 'a' });
   * await xa.end(xid);
   * if (await xa.prepare(xid) === XaCodes.XA_OK) await xa.commit(xid, false);
   * ```
   */
  xaResource(options: XaResourceOptions = {}): XaResource<V> {
    if (this.closing !== undefined || this.ctx.closing) throw new ShuttingDownError('the producer');
    return new XaResource(this.transactionHost(), options);
  }

  /**
   * Stops accepting sends (they fail with ShuttingDownError), waits for the answers of the sends already made (at
   * most the send timeout plus a second), then fails what is still queued.
   *
   * @example
   * ```ts
   * await producer.close();
   * ```
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.pending > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          this.idle = resolve;
          timer = setTimeout(resolve, this.timeoutMs + CLOSE_GRACE_MS);
        });
        clearTimeout(timer);
        this.idle = undefined;
      }
      for (let q = this.queue.shift(); q !== undefined; q = this.queue.shift()) {
        q.reject(new ShuttingDownError('the producer'));
      }
      this.unregister();
    })();
    return this.closing;
  }

  private txHost: TransactionHost<V> | undefined;
  private txCounter = 0;

  /** What transactions need of this producer; its session id is made on first use. */
  private transactionHost(): TransactionHost<V> {
    const router = this.ctx.router;
    this.txHost ??= {
      encodeForTransaction: (record, brokerId) => this.encodeForTransaction(record, brokerId),
      link: (id) => router.link(id),
      brokerIds: () => [...router.links().keys()].sort((a, b) => a - b),
      requestTimeoutMs: this.ctx.options.requestTimeoutMs,
      sessionId: newSessionId(),
    };
    return this.txHost;
  }

  /** The record's serialized value; throws InvalidArgumentError for a missing value or a non-string attribute. */
  private checkedPayload(record: ProducerRecord<V>): Buffer {
    if (record.value === undefined || record.value === null) {
      throw new InvalidArgumentError(`a record of topic ${record.topic} has no value`);
    }
    if (record.attribute !== undefined && typeof record.attribute !== 'string') {
      throw new InvalidArgumentError(`the attribute of a record of topic ${record.topic} must be a string`);
    }
    return this.serialize(record.value);
  }

  /** A record of a transaction encoded as `send` would; without a partition, one of `brokerId`'s if given. */
  private async encodeForTransaction(record: ProducerRecord<V>, brokerId: number | undefined): Promise<TransactionalPut> {
    if (this.closing !== undefined || this.ctx.closing) throw new ShuttingDownError('the producer');
    const topic = this.topics.get(record.topic);
    const payload = this.checkedPayload(record);
    const partitions = topic.partitions ?? await this.topics.load(topic);
    let partition: Partition;
    if (record.partition === undefined && brokerId !== undefined) {
      const own = partitions.filter((p) => p.brokerId === brokerId);
      if (own.length === 0) {
        throw new InvalidArgumentError(`topic ${topic.name} has no partition on broker ${brokerId}, the broker of the transaction`);
      }
      partition = this.selector.select(topic.name, own, record);
    } else {
      partition = this.choose(topic, record);
      // A partition number names a partition of the transaction's broker.
      if (typeof record.partition === 'number' && brokerId !== undefined) partition = { brokerId, partition: partition.partition };
    }
    const data = await encodeRecord(payload, record.attribute ?? null, record.compression ?? this.compression);
    if (data.data.length > this.maxMessageSize) throw new MessageTooLargeError(data.data.length, this.maxMessageSize);
    return { topic: topic.name, partition, flag: data.flag, data: data.data, timeoutMs: this.timeoutMs };
  }

  /** The partition of a record: its own, else the selector's pick among the topic's partitions. */
  private choose(topic: TopicState, record: ProducerRecord<V>): Partition {
    const p = record.partition;
    if (p === undefined) return this.selector.select(topic.name, topic.partitions!, record);
    if (typeof p !== 'number') return p;
    if (!Number.isInteger(p) || p < 0 || p > 0x7fffffff) {
      throw new InvalidArgumentError(`partition ${p} of a record of topic ${topic.name} is not a partition number`);
    }
    return { brokerId: topic.partitions![0]?.brokerId ?? 0, partition: p };
  }

  /** Encodes and writes one put; the returned promise settles with its answer. */
  private dispatch(topic: TopicState, partition: Partition, flag: number, data: Buffer): Promise<SendResult> {
    if (data.length > this.maxMessageSize) throw new MessageTooLargeError(data.length, this.maxMessageSize);
    const link = this.ctx.router.link(partition.brokerId);
    if (++this.inFlight > this.maxSeen) this.maxSeen = this.inFlight;
    if (!link.isConnected) {
      // The link encodes once it is connected, after later sends overwrote `next`: this put keeps its own arguments.
      const { prefix } = topic;
      const p = partition.partition;
      const checksum = crc32Masked(data);
      return new Promise((resolve, reject) => {
        link.requestWith((opaque) => encodePutFrame(prefix, p, flag, checksum, opaque, data), onPutReply,
          new PendingPut(this, topic.name, partition, resolve, reject), this.timeoutMs);
      });
    }
    // A connected link calls encodeCurrent synchronously inside requestWith: these fields carry its arguments without
    // a closure per message.
    const next = this.next;
    next.prefix = topic.prefix;
    next.partition = partition.partition;
    next.flag = flag;
    next.checksum = crc32Masked(data);
    next.data = data;
    return new Promise((resolve, reject) => {
      link.requestWith(this.encodeCurrent, onPutReply, new PendingPut(this, topic.name, partition, resolve, reject),
        this.timeoutMs);
    });
  }

  private readonly next: { prefix: Buffer; partition: number; flag: number; checksum: number; data: Buffer } =
    { prefix: Buffer.alloc(0), partition: 0, flag: 0, checksum: 0, data: Buffer.alloc(0) };
  private readonly encodeCurrent = (opaque: number): Buffer => {
    const n = this.next;
    return encodePutFrame(n.prefix, n.partition, n.flag, n.checksum, opaque, n.data);
  };

  /** @internal called once per answered (or failed) put */
  settled(): void {
    this.inFlight--;
    if (this.queue.length > 0) this.pump();
    if (this.idle !== undefined && this.pending === 0) this.idle();
  }

  /** The awaits a queued send needs (the topic's partitions, compression) before it may go out. */
  private async prepare(q: QueuedSend<V>): Promise<void> {
    try {
      if (q.topic.partitions === undefined) await this.topics.load(q.topic);
      const data = await encodeRecord(q.payload, q.record.attribute ?? null, q.compression);
      q.data = data.data;
      q.flag = data.flag;
    } catch (e) {
      q.error = e;
    }
    q.ready = true;
    this.pump();
  }

  /** Sends queued records in order while the head is ready and the in-flight bound allows. */
  private pump(): void {
    for (let q = this.queue.peek(); q !== undefined && q.ready; q = this.queue.peek()) {
      if (q.error === undefined && this.inFlight >= this.maxInFlight) return;
      this.queue.shift();
      if (q.error !== undefined) {
        q.reject(q.error);
        continue;
      }
      try {
        this.dispatch(q.topic, this.choose(q.topic, q.record), q.flag, q.data!).then(q.resolve, q.reject);
      } catch (e) {
        q.reject(e);
      }
    }
    if (this.idle !== undefined && this.pending === 0) this.idle();
  }
}

/** One put waiting for its answer. */
class PendingPut {
  constructor(
    readonly producer: { settled(): void },
    readonly topic: string,
    readonly partition: Partition,
    readonly resolve: (r: SendResult) => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

function onPutReply(reply: Response | undefined, error: Error | undefined, token: unknown): void {
  const p = token as PendingPut;
  p.producer.settled();
  if (error !== undefined) {
    p.reject(error);
    return;
  }
  try {
    p.resolve(toResult(reply!, p.topic, p.partition));
  } catch (e) {
    p.reject(e);
  }
}

function toResult(r: Response, topic: string, partition: Partition): SendResult {
  if (r.type === 'result' && r.code === 200) {
    const ack = parsePutResult(r.body);
    return { topic, id: ack.id, partition, offset: ack.offset };
  }
  if (r.type === 'value') throw putError(500, 'the broker answered a put with a value frame', topic, partition.partition);
  throw putError(r.code, r.body.toString('utf8'), topic, partition.partition);
}

function positive(v: number, name: string): number {
  if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got ${v}`);
  return v;
}

/** Compresses (unless `compression` is None) and encodes a payload with its attribute: the stored record's data. */
async function encodeRecord(payload: Buffer, attribute: string | null, compression: CompressionType):
Promise<{ data: Buffer; flag: number }> {
  const compressed = compression === CompressionTypes.None ? payload : await compressPayload(compression, payload);
  return encodePayload(compressed, attribute, flagWithCompression(0, compression));
}
