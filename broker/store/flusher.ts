/**
 * The shared flush cycle: appends only mark their partition dirty; once per event-loop turn (setImmediate) every
 * dirty partition starts at most one write (one writev per segment touched, then fdatasync in group commit).
 * Appends that arrive while a partition's write is in flight wait for the next cycle, so writes pipeline with
 * request parsing and many puts share one syscall and one fsync.
 */

export interface FlushTarget {
  /** Called by the cycle; starts the partition's next write if it has work and none is in flight. */
  runCycle(): void;
}

export class Flusher {
  private dirty: FlushTarget[] = [];
  private scheduled = false;
  /** Cycles run so far (for stats and tests). */
  cycles = 0;
  /**
   * Called after every fdatasync of a segment with its duration in seconds (the broker's fsync latency histogram).
   * Once per fsync, which group commit shares among many puts, so it stays off the per-message path.
   */
  onFsync: ((seconds: number) => void) | undefined = undefined;

  mark(target: FlushTarget): void {
    this.dirty.push(target);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    this.scheduled = false;
    this.cycles++;
    const d = this.dirty;
    this.dirty = [];
    for (const t of d) t.runCycle();
  };
}

/** Fixed-size write buffers reused across partitions, so appends allocate nothing in the steady state. */
export class ChunkPool {
  private readonly idle: Buffer[] = [];

  constructor(readonly chunkSize = 64 * 1024, private readonly maxIdle = 256) {}

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafe(this.chunkSize);
  }

  give(buf: Buffer): void {
    if (buf.length === this.chunkSize && this.idle.length < this.maxIdle) this.idle.push(buf);
  }
}
