/**
 * The `sendAll` operator: a stream of records in, a stream of SendResults out, in input order, with a bounded
 * number of sends pipelined. RxJS pushes without backpressure, so records that arrive while the bound is reached
 * wait here (as `mergeMap(send, n)` would hold them) and go out as answers come back.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { InvalidArgumentError } from '../errors.js';
import type { ProducerRecord, SendResult } from '../message.js';

/**
 * Options of {@link sendAll}.
 *
 * @example
 * ```ts
 * // This stream takes at most 500 of the producer's maxInFlight, leaving the rest to other senders.
 * from(records).pipe(producer.sendAll({ maxInFlight: 500 })).subscribe((r) => console.log(r.offset));
 * ```
 */
export interface SendAllOptions {
  /** Sends awaiting their answer at once; default the producer's `maxInFlight`. */
  readonly maxInFlight?: number;
}

/** What {@link sendAll} needs of a producer. */
export interface RecordSender<V> {
  send(record: ProducerRecord<V>): Promise<SendResult>;
  readonly maxInFlight: number;
}

interface Slot {
  done: boolean;
  result: SendResult | undefined;
  error: unknown;
}

/**
 * Sends every record of the source through `producer`, keeping up to `maxInFlight` sends pipelined. Emits the
 * results in input order; errors at the first failed send, once the results before it were emitted; completes
 * when the source completed and every send was answered. Unsubscribing stops sending (sends already written
 * still complete on the broker).
 *
 * @example
 * ```ts
 * from(lines).pipe(
 *   map((line) => ({ topic: 'logs', value: line })),
 *   sendAll(producer, { maxInFlight: 2000 }),
 * ).subscribe({ error: (e) => console.error('stopped at', e) });
 * ```
 */
export function sendAll<V>(producer: RecordSender<V>, options: SendAllOptions = {}):
OperatorFunction<ProducerRecord<V>, SendResult> {
  const max = options.maxInFlight ?? producer.maxInFlight;
  if (!Number.isInteger(max) || max <= 0) throw new InvalidArgumentError(`maxInFlight must be a positive integer, got ${max}`);
  return (source) => new Observable<SendResult>((subscriber) => {
    const waiting: ProducerRecord<V>[] = [];
    let waitingHead = 0;
    const slots: Slot[] = [];
    let slotsHead = 0;
    let inFlight = 0;
    let sourceDone = false;
    let stopped = false;

    const start = (record: ProducerRecord<V>): void => {
      const slot: Slot = { done: false, result: undefined, error: undefined };
      slots.push(slot);
      inFlight++;
      producer.send(record).then((r) => {
        slot.result = r;
        answered(slot);
      }, (e: unknown) => {
        slot.error = e ?? new Error('send failed');
        answered(slot);
      });
    };

    const answered = (slot: Slot): void => {
      slot.done = true;
      inFlight--;
      if (stopped) return;
      for (let s = slots[slotsHead]; s !== undefined && s.done; s = slots[slotsHead]) {
        slots[slotsHead++] = undefined as unknown as Slot;
        if (s.error !== undefined) {
          stopped = true;
          subscriber.error(s.error);
          return;
        }
        subscriber.next(s.result!);
        if (stopped) return; // the subscriber unsubscribed in next()
      }
      if (slotsHead > 1024 && slotsHead * 2 > slots.length) {
        slots.splice(0, slotsHead);
        slotsHead = 0;
      }
      while (inFlight < max && waitingHead < waiting.length) {
        const r = waiting[waitingHead]!;
        waiting[waitingHead++] = undefined as unknown as ProducerRecord<V>;
        start(r);
      }
      if (waitingHead > 1024 && waitingHead * 2 > waiting.length) {
        waiting.splice(0, waitingHead);
        waitingHead = 0;
      }
      finishIfDone();
    };

    const finishIfDone = (): void => {
      if (sourceDone && inFlight === 0 && waitingHead === waiting.length && !stopped) {
        stopped = true;
        subscriber.complete();
      }
    };

    const upstream = source.subscribe({
      next: (record) => {
        if (stopped) return;
        if (inFlight < max && waitingHead === waiting.length) start(record);
        else waiting.push(record);
      },
      error: (e: unknown) => {
        if (stopped) return;
        stopped = true;
        subscriber.error(e);
      },
      complete: () => {
        sourceDone = true;
        finishIfDone();
      },
    });

    return () => {
      stopped = true;
      upstream.unsubscribe();
      waiting.length = 0;
      slots.length = 0;
    };
  });
}
