/**
 * A local transaction of a producer (MetaQ §5.2): the messages sent in it become visible together at commit, or not
 * at all. It lives on one broker, the broker of its first message, and on one connection: BEGIN goes out lazily right
 * before the first put, every later put must go to the same broker, and if the connection drops the broker rolls the
 * transaction back (a later commit then fails with XAER_NOTA).
 */
import type { Link } from '../cluster/broker-router.js';
import { InvalidArgumentError, TransactionError } from '../errors.js';
import type { ProducerRecord, SendResult } from '../message.js';
import { checkTimeoutSec, transactionCommand, type TransactionalPut, type TransactionHost } from './transaction-commands.js';
import { TransactionSends } from './transaction-sends.js';

export interface TransactionOptions {
  /**
   * Seconds after which the broker rolls back the transaction if it is not committed (capped by the broker's
   * `maxTxTimeoutInSeconds`); default 0, no timeout of its own.
   */
  readonly timeoutSec?: number;
}

/** Where a transaction is in its life. */
export type TransactionState = 'open' | 'committing' | 'committed' | 'rolling back' | 'rolled back' | 'failed';

/**
 * Made by `producer.beginTransaction()` (or handed to the callback of `producer.transaction()`).
 *
 * @example
 * ```ts
 * const tx = producer.beginTransaction({ timeoutSec: 10 });
 * try {
 *   await tx.send({ topic: 'orders', value: 'a' });
 *   await tx.send({ topic: 'orders', value: 'b' });
 *   await tx.commit();
 * } catch (e) {
 *   if (tx.state === 'open') await tx.rollback();
 *   throw e;
 * }
 * ```
 */
export class Transaction<V = Buffer | string> {
  private current: TransactionState = 'open';
  private brokerId: number | undefined;
  private begun: Promise<Link> | undefined;
  private readonly sends: TransactionSends<V>;

  /** @internal use `producer.beginTransaction()` */
  constructor(private readonly host: TransactionHost<V>, readonly key: string,
    private readonly options: TransactionOptions = {}) {
    if (options.timeoutSec !== undefined) checkTimeoutSec(options.timeoutSec);
    this.sends = new TransactionSends(host);
  }

  get state(): TransactionState {
    return this.current;
  }

  /** The broker the transaction runs on; undefined before the first send. */
  get broker(): number | undefined {
    return this.brokerId;
  }

  /**
   * Sends a record inside the transaction. Resolves with its id and partition; `offset` is -1, since the message
   * reaches its partition only at commit. A record for a partition of another broker than the transaction's is
   * refused (InvalidArgumentError); without a partition, one of the transaction's broker is picked.
   */
  send(record: ProducerRecord<V>): Promise<SendResult> {
    if (this.current !== 'open') return Promise.reject(this.finished('send in'));
    return this.sends.send(record, this.key, () => this.brokerId, (put) => this.place(put));
  }

  /**
   * Commits (one phase) once every send was answered. Rejects with TransactionError when a send of the transaction
   * failed (roll it back instead), when the broker refused (`xaCode`: e.g. 106 it was rolled back on timeout, -4 it
   * is unknown: the connection dropped), or with `outcomeUnknown` when no answer came in time.
   */
  async commit(): Promise<void> {
    if (this.current !== 'open') throw this.finished('commit');
    this.current = 'committing';
    await this.sends.settle();
    if (this.sends.failed !== undefined) {
      this.current = 'open';
      throw new TransactionError(this.key, null, `a send of transaction ${this.key} failed; roll it back`,
        { cause: this.sends.failed });
    }
    await this.finish('COMMIT_ONE_PHASE', 'committed');
  }

  /** Rolls back: nothing sent in the transaction becomes visible. Allowed after a failed commit too. */
  async rollback(): Promise<void> {
    if (this.current !== 'open' && this.current !== 'failed') throw this.finished('roll back');
    this.current = 'rolling back';
    await this.sends.settle();
    await this.finish('ROLLBACK', 'rolled back');
  }

  private async finish(type: 'COMMIT_ONE_PHASE' | 'ROLLBACK', done: TransactionState): Promise<void> {
    try {
      // Nothing was sent: the broker never heard of the transaction.
      // A BEGIN that failed left nothing at the broker to roll back.
      const link = this.begun === undefined ? undefined
        : await (type === 'ROLLBACK' ? this.begun.catch(() => undefined) : this.begun);
      if (link !== undefined) await transactionCommand(this.host, link, this.key, type, { decisive: true });
      this.current = done;
    } catch (e) {
      this.current = 'failed';
      throw e;
    }
  }

  /** The link of the transaction's broker; the first put fixes the broker and sends BEGIN. */
  private place(put: TransactionalPut): Promise<Link> {
    const id = put.partition.brokerId;
    if (this.begun === undefined) {
      this.brokerId = id;
      const link = this.host.link(id);
      this.begun = transactionCommand(this.host, link, this.key, 'BEGIN', { timeoutSec: this.options.timeoutSec ?? null })
        .then(() => link);
      return this.begun;
    }
    if (id !== this.brokerId) {
      return Promise.reject(new InvalidArgumentError(`transaction ${this.key} runs on broker ${this.brokerId}: ` +
        `a message for partition ${id}-${put.partition.partition} of topic ${put.topic} (broker ${id}) cannot join it`));
    }
    return this.begun;
  }

  private finished(what: string): TransactionError {
    return new TransactionError(this.key, null, `cannot ${what} transaction ${this.key}: it is ${this.current}`);
  }
}
