/**
 * The one-way producer (MetaQ's AsyncMetaMessageProducer, improved): `send` returns at once and never fails for
 * transport reasons. Messages go out as ordinary puts through a sliding window of permits (one per message, one
 * more per 4 KiB). When the window is full, the broker is unreachable, or a put fails retriably, the message goes
 * to its topic's spool on local disk (`<recoverDir>/async/<topic>/`), and while a topic's spool is not empty its new
 * messages go there too, so they keep their order. A background loop resends each spool in order (every
 * `resendIntervalMs`, and as soon as a link reconnects) and removes what the broker acked; a spool left by a
 * previous process on the same `recoverDir` is resent the same way.
 *
 * Limits, as in MetaQ: a put whose answer was lost (the connection dropped) is spooled and resent, so the broker
 * may store it twice; a put that fails retriably while later ones succeed is resent after them. Non-retriable
 * failures (unknown topic, wrong partition, too large) are counted as `failed` and logged, never spooled.
 */
import type { Logger } from 'pino';
import type { ClientContext } from '../client/client-context.js';
import type { Link } from '../cluster/broker-router.js';
import { CompressionTypes, flagWithCompression, type CompressionType } from '../codec/compression.js';
import { defaultSerializer, type Serializer } from '../codec/serializers.js';
import { PRODUCER_DEFAULTS, type AsyncProducerOptions } from '../config.js';
import {
  InvalidArgumentError, MessageTooLargeError, MetaqError, ShuttingDownError, TimeoutError,
} from '../errors.js';
import type { ProducerRecord } from '../message.js';
import { topicNameProblem } from '../protocol/names.js';
import { Producer } from './producer.js';
import { decodeSpooled, encodeSpooled, Spool, type SpooledMessage } from './spool.js';

/**
 * Counters of an {@link AsyncProducer}.
 *
 * @example
 * ```ts
 * const s: AsyncProducerStats = logs.stats();
 * // send() never throws and its warnings are rate-limited: these counters are the exact record of losses.
 * if (s.dropped + s.failed > 0) alert(`async producer lost ${s.dropped + s.failed} messages`);
 * ```
 */
export interface AsyncProducerStats {
  /** Acked by the broker on the first try. */
  readonly sent: number;
  /** Written to the local spool. */
  readonly spooled: number;
  /** Acked by the broker when resent from the spool. */
  readonly resent: number;
  /** Refused because the topic's spool held `maxSpooled` messages (or could not be written). */
  readonly dropped: number;
  /** Refused by the broker for good (unknown topic, wrong partition, too large...). */
  readonly failed: number;
}

/** Resends pipelined per batch while a spool drains. */
const RESEND_BATCH = 512;
/** How long close() waits for answers beyond the send timeout. */
const CLOSE_GRACE_MS = 1000;
/** At most one warning per this period for repeated failures. */
const LOG_EVERY_MS = 1000;
/** A partition number without a broker id is spooled with this broker id. */
const FIRST_BROKER = -1;

interface TopicSpool {
  readonly spool: Promise<Spool>;
  /** Messages spooled and not yet removed, appends in progress included: the topic spools while it is above 0. */
  count: number;
  draining: Promise<void> | undefined;
}

/**
 * A producer whose `send` never blocks: see the module comment for what happens to each message.
 *
 * @example
 * ```ts
 * const logs = client.asyncProducer({ windowSize: 20_000 });
 * logs.send({ topic: 'app-logs', value: line });
 * await logs.flush(5000);   // everything acked or spooled
 * console.log(logs.stats()); // { sent, spooled, resent, dropped, failed }
 * ```
 */
export class AsyncProducer<V = Buffer | string> {
  private readonly inner: Producer<Buffer>;
  private readonly serialize: Serializer<V>;
  private readonly compression: CompressionType;
  private readonly windowSize: number;
  private readonly maxSpooled: number;
  private readonly maxMessageSize: number;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly counters = { sent: 0, spooled: 0, resent: 0, dropped: 0, failed: 0 };
  private readonly topics = new Map<string, TopicSpool>();
  private readonly checkedTopics = new Set<string>();
  private windowUsed = 0;
  /** Direct sends and spool appends not yet settled: flush() waits for 0. */
  private unsettled = 0;
  private ready = false;
  /** Messages sent before the old spools were opened. */
  private early: SpooledMessage[] = [];
  private closed: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private links: Link[] = [];
  /** The router's topologyVersion when `links` was taken (a cluster's brokers come and go). */
  private linksVersion: number | undefined;
  private unlisten: (() => void)[] = [];
  private readonly idleWaiters = new Set<() => void>();
  private lastLog = 0;
  private suppressed = 0;
  private readonly unregister: () => void;

  constructor(private readonly ctx: ClientContext, options: AsyncProducerOptions<V> = {}) {
    this.windowSize = positive(options.windowSize ?? PRODUCER_DEFAULTS.windowSize, 'windowSize');
    this.maxSpooled = positive(options.maxSpooled ?? PRODUCER_DEFAULTS.maxSpooled, 'maxSpooled');
    this.maxMessageSize = positive(options.maxMessageSize ?? PRODUCER_DEFAULTS.maxMessageSize, 'maxMessageSize');
    const resendIntervalMs = positive(options.resendIntervalMs ?? PRODUCER_DEFAULTS.resendIntervalMs, 'resendIntervalMs');
    this.serialize = options.serializer ?? (defaultSerializer as Serializer<unknown> as Serializer<V>);
    this.compression = options.compression ?? CompressionTypes.None;
    flagWithCompression(0, this.compression);
    this.timeoutMs = options.sendTimeoutMs ?? ctx.options.requestTimeoutMs;
    this.logger = ctx.logger;
    this.inner = new Producer<Buffer>(ctx, {
      ...(options.partitioner === undefined ? {} : { partitioner: options.partitioner }),
      ...(options.defaultTopic === undefined ? {} : { defaultTopic: options.defaultTopic }),
      maxInFlight: this.windowSize + RESEND_BATCH,
      maxMessageSize: this.maxMessageSize,
      sendTimeoutMs: this.timeoutMs,
    });
    this.watchLinks();
    this.timer = setInterval(() => this.drainAll(), resendIntervalMs);
    this.timer.unref(); // the spool is on disk: a pending resend must not keep the process alive
    this.unregister = ctx.own(this);
    void this.start();
  }

  /**
   * Sends a record without waiting: directly when the window allows and the broker is reachable, else through the
   * spool. Throws only for a bad record (InvalidArgumentError, MessageTooLargeError) or after close
   * (ShuttingDownError).
   *
   * @example
   * ```ts
   * producer.send({ topic: 'clicks', value: JSON.stringify(click), key: click.userId });
   * ```
   */
  send(record: ProducerRecord<V>): void {
    if (this.closed !== undefined || this.ctx.closing) throw new ShuttingDownError('the async producer');
    const m = this.check(record);
    if (!this.ready) {
      // The spools a previous process left are being opened: hold a window's worth in memory meanwhile.
      if (this.early.length >= this.windowSize) {
        // Spool the held ones first: a topic's messages must reach the spool in send order.
        const early = this.early;
        this.early = [];
        for (const e of early) this.spool(e);
        for (let i = 0; i < early.length; i++) this.settle();
      }
      this.early.push(m);
      this.unsettled++;
      return;
    }
    this.route(m);
  }

  /** Sends directly, or through the spool when the topic is spooling, the window is full or the broker is down. */
  private route(m: SpooledMessage): void {
    const spooling = this.topics.get(m.topic);
    if (spooling !== undefined && spooling.count > 0) {
      this.spool(m);
      return;
    }
    const permits = 1 + (m.payload.length >>> 12);
    if (this.windowUsed + permits > this.windowSize || this.isDown()) {
      this.spool(m);
      return;
    }
    this.windowUsed += permits;
    this.unsettled++;
    this.inner.send(toRecord(m)).then(() => {
      this.counters.sent++;
      this.release(permits);
    }, (e: unknown) => {
      this.release(permits);
      if (isRetriable(e)) this.spool(m);
      else this.fail(m.topic, e);
    });
  }

  /**
   * The counters so far.
   *
   * @example
   * ```ts
   * const { sent, spooled, resent, dropped, failed } = producer.stats();
   * ```
   */
  stats(): AsyncProducerStats {
    return { ...this.counters };
  }

  /** Messages waiting in the spools now. */
  get spooledNow(): number {
    let n = 0;
    for (const t of this.topics.values()) n += t.count;
    return n;
  }

  /**
   * Resolves once every message sent so far was acked by the broker or written to the spool; rejects with
   * TimeoutError after `timeoutMs`.
   *
   * @example
   * ```ts
   * await producer.flush(10_000);
   * ```
   */
  flush(timeoutMs = this.timeoutMs): Promise<void> {
    if (this.unsettled === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        reject(new TimeoutError(`async producer: ${this.unsettled} messages neither acked nor spooled after ${timeoutMs} ms`));
      }, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  /**
   * Stops resending, waits (bounded) until what was sent is acked or spooled, and closes the spools; what is left
   * in them is resent by the next async producer on the same `recoverDir`.
   *
   * @example
   * ```ts
   * await producer.close();
   * ```
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.timer);
      for (const off of this.unlisten) off();
      this.unlisten = [];
      try {
        await this.flush(this.timeoutMs + CLOSE_GRACE_MS);
      } catch (e) {
        this.logger.warn({ err: e }, 'async producer closed with messages neither acked nor spooled');
      }
      for (const t of this.topics.values()) await t.draining;
      await this.inner.close();
      for (const t of this.topics.values()) {
        try {
          await (await t.spool).close();
        } catch (e) {
          this.logger.warn({ err: e }, 'closing an async producer spool failed');
        }
      }
      this.unregister();
    })();
    return this.closed;
  }

  /** Opens the spools a previous producer left, then lets sends go direct and resends what was found. */
  private async start(): Promise<void> {
    try {
      for (const topic of await Spool.topics(this.ctx.options.recoverDir)) this.topicSpool(topic);
      for (const t of this.topics.values()) await t.spool.catch(() => undefined);
    } catch (e) {
      this.logger.error({ err: e, recoverDir: this.ctx.options.recoverDir }, 'cannot list the async producer spools');
    }
    this.ready = true;
    const early = this.early;
    this.early = [];
    for (const m of early) this.route(m);
    for (let i = 0; i < early.length; i++) this.settle();
    this.drainAll();
  }

  /** Validates and serializes a record (throws for bad ones). */
  private check(record: ProducerRecord<V>): SpooledMessage {
    const topic = record.topic;
    if (!this.checkedTopics.has(topic)) {
      const problem = typeof topic === 'string' ? topicNameProblem(topic) : 'the topic must be a string';
      if (problem !== undefined) throw new InvalidArgumentError(problem);
      this.checkedTopics.add(topic);
    }
    if (record.value === undefined || record.value === null) throw new InvalidArgumentError(`a record of topic ${topic} has no value`);
    if (record.attribute !== undefined && typeof record.attribute !== 'string') {
      throw new InvalidArgumentError(`the attribute of a record of topic ${topic} must be a string`);
    }
    const compression = record.compression ?? this.compression;
    if (compression !== this.compression) flagWithCompression(0, compression);
    const payload = this.serialize(record.value);
    const size = payload.length + (record.attribute === undefined ? 0 : 4 + Buffer.byteLength(record.attribute));
    if (compression === CompressionTypes.None && size > this.maxMessageSize) throw new MessageTooLargeError(size, this.maxMessageSize);
    const p = record.partition;
    if (typeof p === 'number' && (!Number.isInteger(p) || p < 0 || p > 0x7fffffff)) {
      throw new InvalidArgumentError(`partition ${p} of a record of topic ${topic} is not a partition number`);
    }
    return {
      topic, payload, compression,
      ...(record.key === undefined ? {} : { key: record.key }),
      ...(record.attribute === undefined ? {} : { attribute: record.attribute }),
      ...(p === undefined ? {} : { partition: typeof p === 'number' ? { brokerId: FIRST_BROKER, partition: p } : p }),
    };
  }

  private topicSpool(topic: string): TopicSpool {
    let t = this.topics.get(topic);
    if (t === undefined) {
      const spool = Spool.open(this.ctx.options.recoverDir, topic, this.logger);
      const state: TopicSpool = { spool, count: 0, draining: undefined };
      t = state;
      spool.then((s) => { state.count += s.size; }, (e: unknown) => {
        this.logger.error({ err: e, topic }, 'cannot open the async producer spool');
      });
      this.topics.set(topic, t);
    }
    return t;
  }

  /** Appends a message to its topic's spool (in call order), or drops it when the spool is full or unwritable. */
  private spool(m: SpooledMessage): void {
    const t = this.topicSpool(m.topic);
    if (t.count >= this.maxSpooled) {
      this.counters.dropped++;
      return;
    }
    t.count++;
    this.unsettled++;
    const record = encodeSpooled(m);
    t.spool.then((s) => s.append(record)).then(() => {
      this.counters.spooled++;
      this.settle();
      if (t.draining === undefined) this.drain(m.topic, t);
    }, (e: unknown) => {
      t.count--;
      this.counters.dropped++;
      this.settle();
      this.warn({ err: e, topic: m.topic }, 'a message could not be spooled and was dropped');
    });
  }

  private drainAll(): void {
    if (!this.ready || this.closed !== undefined) return;
    for (const [topic, t] of this.topics) {
      if (t.count > 0 && t.draining === undefined) this.drain(topic, t);
    }
  }

  /** Resends a topic's spool in order, pass after pass, until it is empty, a resend fails retriably, or close. */
  private drain(topic: string, t: TopicSpool): void {
    if (!this.ready || this.closed !== undefined || this.isDown()) return;
    t.draining = (async () => {
      const spool = await t.spool;
      while (t.count > 0 && this.closed === undefined && !this.isDown()) {
        const { visited, stopped } = await this.resendPass(topic, t, spool);
        if (stopped || visited === 0) return;
      }
    })().catch((e: unknown) => {
      this.logger.error({ err: e, topic }, 'resending the async producer spool failed');
    }).finally(() => { t.draining = undefined; });
  }

  private async resendPass(topic: string, t: TopicSpool, spool: Spool): Promise<{ visited: number; stopped: boolean }> {
    let visited = 0;
    let stopped = false;
    let batch: Promise<void>[] = [];
    for await (const { seq, record } of spool.entries()) {
      visited++;
      let m: SpooledMessage;
      try {
        m = decodeSpooled(topic, record);
      } catch (e) {
        this.fail(topic, e);
        t.count--;
        await spool.remove(seq);
        continue;
      }
      batch.push(this.inner.send(toRecord(m)).then(() => {
        this.counters.resent++;
        t.count--;
        return spool.remove(seq);
      }, (e: unknown) => {
        if (isRetriable(e)) {
          stopped = true;
          return;
        }
        this.fail(topic, e);
        t.count--;
        return spool.remove(seq);
      }));
      if (batch.length >= RESEND_BATCH) {
        await Promise.all(batch);
        batch = [];
        if (stopped || this.closed !== undefined || this.isDown()) break;
      }
    }
    await Promise.all(batch);
    return { visited, stopped };
  }

  private release(permits: number): void {
    this.windowUsed -= permits;
    this.settle();
  }

  private settle(): void {
    if (--this.unsettled === 0) for (const w of [...this.idleWaiters]) w();
  }

  /** Takes the router's links (again) and resends the spools whenever one of them connects. */
  private watchLinks(): void {
    for (const off of this.unlisten) off();
    this.unlisten = [];
    this.linksVersion = this.ctx.router.topologyVersion;
    this.links = [...this.ctx.router.links().values()];
    for (const link of this.links) {
      this.unlisten.push(link.onStateChange((state) => { if (state === 'connected') this.drainAll(); }));
    }
  }

  /** True when every link is down (the broker is unreachable: spool at once). */
  private isDown(): boolean {
    if (this.ctx.router.topologyVersion !== this.linksVersion && this.closed === undefined) this.watchLinks();
    if (this.links.length === 0) return false;
    for (const link of this.links) if (link.isConnected) return false;
    return true;
  }

  private fail(topic: string, e: unknown): void {
    this.counters.failed++;
    this.warn({ err: e, topic }, 'async producer: a message was refused and is not retried');
  }

  private warn(obj: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.lastLog < LOG_EVERY_MS) {
      this.suppressed++;
      return;
    }
    this.logger.warn({ ...obj, suppressedSinceLast: this.suppressed }, msg);
    this.lastLog = now;
    this.suppressed = 0;
  }
}

function toRecord(m: SpooledMessage): ProducerRecord<Buffer> {
  const p = m.partition;
  return {
    topic: m.topic, value: m.payload, compression: m.compression,
    ...(m.key === undefined ? {} : { key: m.key }),
    ...(m.attribute === undefined ? {} : { attribute: m.attribute }),
    ...(p === undefined ? {} : { partition: p.brokerId === FIRST_BROKER ? p.partition : p }),
  };
}

function isRetriable(e: unknown): boolean {
  return e instanceof MetaqError && e.retriable;
}

function positive(v: number, name: string): number {
  if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got ${v}`);
  return v;
}
