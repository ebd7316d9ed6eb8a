import type { Link } from '../cluster/broker-router.js';
import type { ProducerRecord, SendResult } from '../message.js';
import { transactionalPut, type TransactionalPut, type TransactionHost } from './transaction-commands.js';

const ignore = (): void => undefined;

/**
 * The puts of one transaction, in call order: each record is encoded and placed only once the records before it
 * went out (so the first one can fix the broker and send BEGIN before any other is placed), but no put waits for the
 * answer of another. `settle()` waits for every answer, as commit, prepare and END must.
 */
export class TransactionSends<V> {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly pending = new Set<Promise<unknown>>();
  /** A put of the transaction was refused or not answered. */
  failed: unknown = undefined;

  constructor(private readonly host: TransactionHost<V>) {}

  /**
   * Queues `record`. `place(put)` runs in order, right before the put goes out: it returns the link to send it on
   * (after BEGIN, for the first) or throws to refuse it.
   */
  send(record: ProducerRecord<V>, key: string, brokerId: () => number | undefined,
    place: (put: TransactionalPut) => Link | Promise<Link>): Promise<SendResult> {
    const step = this.tail.then(async () => {
      const put = await this.host.encodeForTransaction(record, brokerId());
      const link = await place(put);
      const reply = transactionalPut(link, put, key);
      this.pending.add(reply);
      reply.then(() => this.pending.delete(reply), (e: unknown) => {
        this.pending.delete(reply);
        this.failed ??= e;
      });
      return { reply };
    });
    this.tail = step.then(ignore, ignore);
    return step.then((s) => s.reply);
  }

  /** Resolves once every queued put went out and was answered (or failed). */
  async settle(): Promise<void> {
    await this.tail;
    await Promise.allSettled([...this.pending]);
  }
}
