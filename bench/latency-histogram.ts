/**
 * A fixed-size log-bucketed latency histogram (16 buckets per octave, about 4.4% resolution) from 1 µs to
 * about 70 s: recording is one Math.log2 and an increment, with no allocation.
 */
const BUCKETS_PER_OCTAVE = 16;
const OCTAVES = 26;

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS_PER_OCTAVE * OCTAVES + 1);
  private total = 0;
  private maxUs = 0;

  /** Records one latency given in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000;
    const idx = us <= 1 ? 0 : Math.min(this.counts.length - 1, Math.floor(Math.log2(us) * BUCKETS_PER_OCTAVE));
    this.counts[idx]! += 1;
    this.total++;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The upper bound (in ms) of the bucket holding quantile `q`. */
  quantileMs(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.maxUs, 2 ** ((i + 1) / BUCKETS_PER_OCTAVE)) / 1000;
    }
    return this.maxUs / 1000;
  }

  summary(): LatencySummary {
    const round = (x: number): number => Math.round(x * 1000) / 1000;
    return {
      count: this.total,
      p50Ms: round(this.quantileMs(0.5)),
      p99Ms: round(this.quantileMs(0.99)),
      p999Ms: round(this.quantileMs(0.999)),
      maxMs: round(this.maxUs / 1000),
    };
  }
}
