import { CoordinationError } from '../errors.js';

/**
 * Tracks whether a set of ZooKeeper watches has delivered its first complete picture: `expect(key)` for every
 * read still owed, `done(key)` when it came, `settleIfComplete()` after each round. Callers then wait with a
 * deadline, because a watch re-reads forever while ZooKeeper is unreachable and nobody should wait that long.
 *
 * @example
 * ```ts
 * const first = new FirstRead('/meta/brokers/ids');
 * first.expect('children');
 * zk.watchChildren(path, (c) => { first.done('children'); first.settleIfComplete(); });
 * await first.wait(10_000);
 * ```
 */
export class FirstRead {
  private readonly owed = new Set<string>();
  private complete = false;
  private readonly waiters = new Set<{ resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly what: string) {}

  /** True once every read expected so far has come at least once. */
  get isComplete(): boolean {
    return this.complete;
  }

  /** A read that must come before the first picture is complete (ignored once it is). */
  expect(key: string): void {
    if (!this.complete) this.owed.add(key);
  }

  /** The read of `key` came (or is no longer needed). */
  done(key: string): void {
    this.owed.delete(key);
  }

  /** Completes the first picture when nothing is owed any more. */
  settleIfComplete(): void {
    if (this.complete || this.owed.size > 0) return;
    this.complete = true;
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters.clear();
  }

  /** Resolves once complete; rejects with a retriable CoordinationError after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void> {
    if (this.complete) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(new CoordinationError('OPERATION_TIMEOUT',
            `ZooKeeper did not answer the read of ${this.what} within ${timeoutMs} ms`, { retriable: true }));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  /** Fails every waiter (the router is closing). */
  abort(err: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
  }
}
