/**
 * The idempotent sink: counted sentences in, durable counts out, and only then the acks. Node's Writable hands
 * `_writev` everything that queued while the previous write was syncing, so the fsyncs batch themselves: one per
 * batch, with batches growing as the disk slows down.
 */
import { Writable } from 'node:stream';
import type { CountedSentence } from './count.js';
import type { WordCountStore } from './count-store.js';

/** Figures of this run of the sink. */
export interface SinkStats {
  /** Messages this run applied to the counts. */
  applied: number;
  /** Messages this run found applied already (replays after a crash) and acked without counting. */
  duplicates: number;
  /** Durable writes (fdatasyncs). */
  batches: number;
}

/** Called after each batch: when it is durable (before its acks), and when it is acked. */
export interface SinkHooks {
  readonly durable?: (stats: SinkStats) => void;
  readonly acked?: (stats: SinkStats) => void;
}

/**
 * Applies each counted sentence to the store once, then acks its tuple.
 *
 * @example
 * ```ts
 * await pipeline(spout.stream(), new SplitStage(), new CountStage(), new CountSink(store));
 * ```
 */
export class CountSink extends Writable {
  readonly stats: SinkStats = { applied: 0, duplicates: 0, batches: 0 };

  constructor(private readonly store: WordCountStore, private readonly hooks: SinkHooks = {}, highWaterMark = 256) {
    super({ objectMode: true, highWaterMark });
  }

  override _write(c: CountedSentence, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.applyBatch([c]).then(() => callback(), callback);
  }

  override _writev(chunks: { chunk: CountedSentence }[], callback: (error?: Error | null) => void): void {
    this.applyBatch(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  private async applyBatch(batch: CountedSentence[]): Promise<void> {
    // A failure rejects before any ack: the tuples stay pending and the next run replays them.
    const r = await this.store.apply(batch);
    this.stats.applied += r.applied;
    this.stats.duplicates += r.duplicates;
    this.stats.batches++;
    this.hooks.durable?.(this.stats);
    for (const c of batch) c.tuple.ack();
    this.hooks.acked?.(this.stats);
  }
}
