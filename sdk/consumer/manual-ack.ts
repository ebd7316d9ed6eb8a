/**
 * Consumer-side transactions (MetaQ §5.3 step 5, `partition.setAutoAck(false)` with `ack()` / `rollback()`): the
 * messages of a partition accumulate, unacknowledged, until the handler calls `ack()` (they are all processed: the
 * partition's offset may move past them) or `rollback()` (none is: the partition returns to the last acked message
 * and delivers them all again, in order, before anything after them). A handler that throws rolls back its
 * partition's batch.
 *
 * Built on the deliveries' ack and nack, so the consumer's limits apply:
 * - a partition hands out at most `partitionConcurrency` unacked messages (default 1): set it to the largest batch
 *   the handler gathers, or the partition waits for an ack that never comes;
 * - a rollback is a nack of every message of the batch: they come back after the in-line retry delay
 *   (`maxFetchDelayMs` / 10 per redelivery), and a message rolled back more than `maxFetchRetries` times moves to the
 *   local recover store like any failing message.
 * Handlers run one at a time, in delivery order.
 */
import { Observable, type OperatorFunction, type Subscriber } from 'rxjs';
import { partitionName, type Delivery, type Message, type Partition } from '../message.js';

/** The open batch of one partition, handed to the handler with each message. */
export interface PartitionTransaction {
  readonly partition: Partition;
  /** Messages of the batch: delivered since the last ack or rollback, this one included. */
  readonly pending: number;
  /** Acknowledges every message of the batch. */
  ack(): void;
  /** Rolls the batch back: its messages are delivered again, before any later message of the partition. */
  rollback(): void;
}

class PartitionBatch<V> implements PartitionTransaction {
  batch: Delivery<V>[] = [];
  /** Offsets rolled back and not yet delivered again. */
  readonly rewinding = new Set<number>();
  /** Later messages that arrived while the rolled-back ones had not all come back. */
  held: Delivery<V>[] = [];

  constructor(readonly partition: Partition, private readonly out: Subscriber<Message<V>>) {}

  get pending(): number {
    return this.batch.length;
  }

  ack(): void {
    const batch = this.batch;
    this.batch = [];
    for (const d of batch) {
      d.ack();
      this.out.next(d.message);
    }
  }

  rollback(): void {
    const batch = this.batch;
    this.batch = [];
    for (const d of batch) {
      this.rewinding.add(d.message.offset);
      d.nack(new Error(`rolled back by the handler of partition ${partitionName(this.partition)}`));
    }
  }
}

/**
 * An operator over `consumer.messages$(topic)` that hands each message to `handler` with its partition's open batch,
 * and emits every message once it is acked.
 *
 * @example
 * ```ts
 * const consumer = client.consumer({ group: 'billing', partitionConcurrency: 10 });
 * consumer.messages$('orders').pipe(manualAck(async (m, tx) => {
 *   await db.stage(m);
 *   if (tx.pending === 10) {
 *     try { await db.commit(); tx.ack(); } catch { await db.rollback(); tx.rollback(); }
 *   }
 * })).subscribe();
 * ```
 */
export function manualAck<V>(handler: (message: Message<V>, tx: PartitionTransaction) => unknown):
OperatorFunction<Delivery<V>, Message<V>> {
  return (source) => new Observable<Message<V>>((subscriber) => {
    const batches = new Map<string, PartitionBatch<V>>();
    const work: Delivery<V>[] = [];
    let running = false;
    let sourceDone = false;

    const handle = async (d: Delivery<V>): Promise<void> => {
      const name = partitionName(d.message.partition);
      let tx = batches.get(name);
      if (tx === undefined) {
        tx = new PartitionBatch(d.message.partition, subscriber);
        batches.set(name, tx);
      }
      if (tx.rewinding.size > 0 && !tx.rewinding.delete(d.message.offset)) {
        tx.held.push(d);
        return;
      }
      tx.batch.push(d);
      try {
        await handler(d.message, tx);
      } catch {
        tx.rollback();
      }
      if (tx.rewinding.size === 0 && tx.held.length > 0) {
        work.unshift(...tx.held);
        tx.held = [];
      }
    };

    const run = async (): Promise<void> => {
      if (running) return;
      running = true;
      while (work.length > 0 && !subscriber.closed) await handle(work.shift()!);
      running = false;
      if (sourceDone && work.length === 0) subscriber.complete();
    };
    const fail = (e: unknown): void => subscriber.error(e);

    const sub = source.subscribe({
      next: (d) => {
        work.push(d);
        run().catch(fail);
      },
      error: fail,
      complete: () => {
        sourceDone = true;
        run().catch(fail);
      },
    });
    return () => sub.unsubscribe();
  });
}
