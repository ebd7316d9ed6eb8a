/**
 * The appender's counters, in shared memory so that both threads count and either can read them without a message:
 * the application's thread counts what it could not buffer, the sender worker what the broker took or refused.
 */

/** Counter slots. */
export const Counter = {
  /** Acked by the broker. */
  sent: 0,
  /** Refused by the broker for good (unknown topic, too large...): not retried. */
  failed: 1,
  /** Dropped because the buffer was full. */
  dropped: 2,
  /** Dropped because the encoded event was larger than the whole buffer. */
  oversized: 3,
  /** Events the appender could not even encode (a throwing layout); the log call still returned normally. */
  errors: 4,
  /** Still buffered when shutdown's deadline passed. */
  lost: 5,
  /** Sends that failed and were retried. */
  retries: 6,
  /** 1 while the worker holds a connected client. */
  connected: 7,
} as const;

export type CounterName = keyof typeof Counter;

const SLOTS = 8;

/** Allocates the shared memory of the counters. */
export function allocateCounters(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * 8);
}

/** A view of the counters; BigInt64 so that no count wraps in a long-lived process. */
export class AppenderCounters {
  private readonly slots: BigInt64Array;

  constructor(memory: SharedArrayBuffer) {
    this.slots = new BigInt64Array(memory);
  }

  add(name: CounterName, n: number): void {
    Atomics.add(this.slots, Counter[name], BigInt(n));
  }

  set(name: CounterName, n: number): void {
    Atomics.store(this.slots, Counter[name], BigInt(n));
  }

  get(name: CounterName): number {
    return Number(Atomics.load(this.slots, Counter[name]));
  }
}
