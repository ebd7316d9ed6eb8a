import type { PartitionLog } from '../store/partition-log.js';

/** Why a waiting `get` was woken. */
export type WakeReason = 'data' | 'timeout' | 'cancelled';

interface Waiter {
  readonly wake: (reason: WakeReason) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Parks `get` requests that reached the end of their partition until new data becomes readable or a bounded
 * time passes, so consumers see new messages within milliseconds without polling in a loop.
 */
export class LongPoll {
  private readonly waiters = new Map<PartitionLog, Set<Waiter>>();
  private readonly subscriptions = new Map<PartitionLog, () => void>();
  /** Requests parked since start (for metrics). */
  waitsTotal = 0;

  /** Number of parked requests (for stats and tests). */
  get size(): number {
    let n = 0;
    for (const s of this.waiters.values()) n += s.size;
    return n;
  }

  /**
   * Calls `wake` once: with 'data' when `log.readableEnd` advances, 'timeout' after `timeoutMs`, or 'cancelled'
   * from the returned function or {@link cancelAll}.
   */
  wait(log: PartitionLog, timeoutMs: number, wake: (reason: WakeReason) => void): () => void {
    let set = this.waiters.get(log);
    if (set === undefined) {
      set = new Set();
      this.waiters.set(log, set);
      if (!this.subscriptions.has(log)) this.subscriptions.set(log, log.onReadable(() => this.wakeAll(log, 'data')));
    }
    this.waitsTotal++;
    const waiter: Waiter = { wake, timer: undefined };
    const parked = set;
    waiter.timer = setTimeout(() => {
      parked.delete(waiter);
      wake('timeout');
    }, timeoutMs);
    set.add(waiter);
    return () => {
      if (parked.delete(waiter)) {
        clearTimeout(waiter.timer);
        wake('cancelled');
      }
    };
  }

  /** Wakes every parked request (shutdown). */
  cancelAll(): void {
    for (const log of [...this.waiters.keys()]) this.wakeAll(log, 'cancelled');
    for (const unsubscribe of this.subscriptions.values()) unsubscribe();
    this.subscriptions.clear();
  }

  private wakeAll(log: PartitionLog, reason: WakeReason): void {
    const set = this.waiters.get(log);
    if (set === undefined || set.size === 0) return;
    this.waiters.delete(log);
    for (const w of set) {
      clearTimeout(w.timer);
      w.wake(reason);
    }
  }
}
