/**
 * MetaQ's RecoverManager, with a dead-letter topic: messages whose handler kept failing in line are stored on local
 * disk (one journal per topic@group, sdk/storage/recover-store.ts) and redelivered by a background loop until the
 * handler succeeds. After `maxAttempts` failed redeliveries a message goes to the dead-letter topic.
 *
 * Guarantees: a message leaves the store only after its handler resolved or the dead-letter topic acknowledged it;
 * a failed dead-letter send keeps it for the next round. Attempt counts are persisted, so a restart (close, then a
 * new manager on the same recoverDir) resumes where it was. Rounds never overlap.
 */
import type { ClientContext } from '../client/client-context.js';
import { compressionOfFlag } from '../codec/compression.js';
import type { Deserializer } from '../codec/serializers.js';
import { ShuttingDownError } from '../errors.js';
import type { Message, Partition } from '../message.js';
import { Producer } from '../producer/producer.js';
import { RecoverStore, type RecoveredEntry } from '../storage/recover-store.js';

/** The longest wait before the first round after `start()` (MetaQ: 5 s). */
const FIRST_ROUND_MAX_DELAY_MS = 5_000;

/** Options of {@link RecoverManager}. */
export interface RecoverManagerOptions<V> {
  readonly ctx: ClientContext;
  readonly topic: string;
  readonly group: string;
  /** Time between rounds (the consumer's recoverIntervalMs; MetaQ: 5 min). */
  readonly intervalMs: number;
  /** Failed redeliveries after which a message goes to the dead-letter topic (the consumer's maxRecoverAttempts). */
  readonly maxAttempts: number;
  readonly deadLetterTopic: string;
  readonly deserializer: Deserializer<V>;
  /** Hands a stored message to the handler again; resolving means processed. */
  readonly redeliver: (message: Message<V>) => Promise<void>;
}

/** What one round did. */
export interface RecoverRound {
  /** Redelivered successfully and removed. */
  readonly redelivered: number;
  /** Failed again and kept. */
  readonly failed: number;
  /** Sent to the dead-letter topic and removed. */
  readonly deadLettered: number;
  /** Due for the dead-letter topic, but the send failed: kept for the next round. */
  readonly deadLetterFailed: number;
}

/**
 * The recover store of one topic and group and the loop that redelivers from it.
 *
 * @example
 * ```ts
 * const recover = new RecoverManager({ ctx, topic: 'orders', group: 'billing', intervalMs: 300_000, maxAttempts: 16,
 *   deadLetterTopic: 'orders.DLQ', deserializer: Deserializers.buffer, redeliver: (m) => handler(m) });
 * recover.start();
 * await recover.store(failedMessage); // the partition moves on; the loop retries it later
 * await recover.close();
 * ```
 */
export class RecoverManager<V = Buffer> {
  private readonly opened: Promise<RecoverStore>;
  private storeRef: RecoverStore | undefined;
  private producer: Producer<Buffer> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<RecoverRound> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: RecoverManagerOptions<V>) {
    if (!(o.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${o.intervalMs}`);
    this.opened = RecoverStore.open(o.ctx.options.recoverDir, o.topic, o.group, o.ctx.logger);
    this.opened.then((s) => { this.storeRef = s; }, (err: unknown) => {
      o.ctx.logger.error({ err, topic: o.topic, group: o.group }, 'cannot open the recover store');
    });
  }

  /** Messages in the store (0 until the store has been opened). */
  get size(): number {
    return this.storeRef?.size ?? 0;
  }

  /** Resolves once the store is open (rejects if it cannot be). */
  async ready(): Promise<void> {
    await this.opened;
  }

  /** Stores a message whose in-line retries are exhausted. Resolves once it is in the journal. */
  async store(message: Message<V>): Promise<void> {
    if (this.closing !== undefined) throw new ShuttingDownError('the recover manager');
    await (await this.opened).add(message);
  }

  /** Starts the loop: the first round after min(5 s, intervalMs), then a round every intervalMs after the last. */
  start(): void {
    if (this.closing !== undefined || this.timer !== undefined) return;
    this.schedule(Math.min(FIRST_ROUND_MAX_DELAY_MS, this.o.intervalMs));
  }

  /**
   * Runs one round now (after the running one, if any) and resolves with what it did.
   *
   * @example
   * ```ts
   * const { redelivered, deadLettered } = await recover.runOnce();
   * ```
   */
  runOnce(): Promise<RecoverRound> {
    if (this.closing !== undefined) return Promise.reject(new ShuttingDownError('the recover manager'));
    const previous = this.round;
    const next: Promise<RecoverRound> = (async () => {
      if (previous !== undefined) await previous.catch(() => undefined);
      return this.runRound();
    })();
    this.round = next;
    const clear = (): void => {
      if (this.round === next) this.round = undefined;
    };
    next.then(clear, clear);
    return next;
  }

  /** Stops the loop, waits for the running round, then closes the dead-letter producer and the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.round?.catch(() => undefined);
      await this.producer?.close();
      const store = await this.opened.catch(() => undefined);
      await store?.close();
    })();
    return this.closing;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      // A round started by runOnce is running or queued: this tick joins it instead of piling up another.
      const running = this.round;
      const done = running ?? this.runOnce();
      done.then((r) => {
        if (r.redelivered + r.failed + r.deadLettered + r.deadLetterFailed > 0) {
          this.o.ctx.logger.info({ topic: this.o.topic, group: this.o.group, ...r }, 'recover round');
        }
      }, (err: unknown) => {
        this.o.ctx.logger.warn({ err, topic: this.o.topic, group: this.o.group }, 'recover round failed');
      }).finally(() => {
        if (this.closing === undefined) this.schedule(this.o.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async runRound(): Promise<RecoverRound> {
    const store = await this.opened;
    let redelivered = 0;
    let failed = 0;
    let deadLettered = 0;
    let deadLetterFailed = 0;
    for await (const entry of store.entries()) {
      if (this.closing !== undefined || this.o.ctx.closing) break;
      let attempts = entry.attempts;
      if (attempts < this.o.maxAttempts) {
        try {
          await this.o.redeliver(new RecoveredMessage(entry, this.o.deserializer));
          await store.remove(entry.key);
          redelivered++;
          continue;
        } catch (err) {
          attempts = await store.markAttempt(entry.key);
          this.o.ctx.logger.debug({ err, topic: this.o.topic, group: this.o.group, attempts }, 'redelivery failed');
          if (attempts < this.o.maxAttempts) {
            failed++;
            continue;
          }
        }
      }
      if (await this.deadLetter(entry)) {
        await store.remove(entry.key);
        deadLettered++;
      } else {
        deadLetterFailed++;
      }
    }
    return { redelivered, failed, deadLettered, deadLetterFailed };
  }

  /** Sends an entry to the dead-letter topic with its attribute, payload and compression; false when that failed. */
  private async deadLetter(entry: RecoveredEntry): Promise<boolean> {
    try {
      this.producer ??= new Producer<Buffer>(this.o.ctx, {});
      await this.producer.send({
        topic: this.o.deadLetterTopic,
        value: entry.payload,
        ...(entry.attribute === null ? {} : { attribute: entry.attribute }),
        compression: compressionOfFlag(entry.flag),
      });
      this.o.ctx.logger.warn({ topic: this.o.topic, group: this.o.group, id: String(entry.id),
        deadLetterTopic: this.o.deadLetterTopic, attempts: entry.attempts }, 'message moved to the dead-letter topic');
      return true;
    } catch (err) {
      this.o.ctx.logger.warn({ err, topic: this.o.topic, group: this.o.group, deadLetterTopic: this.o.deadLetterTopic },
        'cannot send to the dead-letter topic; the message stays in the recover store');
      return false;
    }
  }
}

/** A message rebuilt from the recover store; its value is deserialized on first access. */
class RecoveredMessage<V> implements Message<V> {
  readonly topic: string;
  readonly partition: Partition;
  readonly offset: number;
  readonly nextOffset: number;
  readonly id: bigint;
  readonly attribute: string | null;
  readonly flag: number;
  readonly payload: Buffer;
  readonly redeliveries: number;
  private cached: { value: V } | undefined = undefined;

  constructor(entry: RecoveredEntry, private readonly deserializer: Deserializer<V>) {
    this.topic = entry.topic;
    this.partition = entry.partition;
    this.offset = entry.offset;
    this.nextOffset = entry.nextOffset;
    this.id = entry.id;
    this.attribute = entry.attribute;
    this.flag = entry.flag;
    this.payload = entry.payload;
    // It failed in line before it was stored, and then once per recorded attempt.
    this.redeliveries = Math.max(entry.redeliveries, 0) + entry.attempts + 1;
  }

  get value(): V {
    return (this.cached ??= { value: this.deserializer(this.payload, this) }).value;
  }
}
