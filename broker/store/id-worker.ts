/**
 * MetaQ's snowflake message ids: `((ms - 1303895660503) << 22) | (brokerId << 12) | seq12`.
 *
 * The hot path never touches bigint: an id is produced as two uint32 halves (`hi`, `lo`) and written as decimal
 * from a per-millisecond cache. Since `2^22 = 2^32 / 2^10`, `hi = floor(ms / 1024)` and
 * `lo = (ms % 1024) << 22 | brokerId << 12 | seq`.
 *
 * Time comes from a monotonic clock anchored to `Date.now()` at construction, so a wall-clock step back while the
 * broker runs can never repeat an id. When the 4096 sequence numbers of a millisecond are used up, the worker moves
 * on to the next millisecond (ahead of the clock if need be).
 */
import { performance } from 'node:perf_hooks';
import { ConfigError } from '../../sdk/errors.js';
import { joinId } from '../../sdk/protocol/record.js';

/** MetaQ's id epoch (2011-04-28). */
export const ID_EPOCH_MS = 1303895660503;
const DEC_SPLIT = 10_000_000;
const ZERO = 0x30;

export class IdWorker {
  /** High 32 bits of the id made by the last {@link next} call. */
  hi = 0;
  /** Low 32 bits (unsigned) of the id made by the last {@link next} call. */
  lo = 0;

  private readonly brokerBits: number;
  private readonly anchorMs: number;
  private readonly anchorPerf: number;
  private lastMs = -1;
  private seq = 0;
  // Decimal cache for the current ms: id = q * 10^7 + (r + low22), with r + low22 < 2 * 10^7.
  private decMs = -1;
  private decQ: Buffer = Buffer.alloc(0);
  private decQ1: Buffer = Buffer.alloc(0);
  private decR = 0;

  constructor(readonly brokerId: number, now: () => number = Date.now) {
    if (!Number.isInteger(brokerId) || brokerId < 0 || brokerId > 1023) {
      throw new ConfigError(`brokerId must be an integer in 0..1023 (it is 10 bits of every message id), got ${brokerId}`);
    }
    this.brokerBits = brokerId << 12;
    this.anchorMs = now() - ID_EPOCH_MS;
    this.anchorPerf = performance.now();
  }

  /** Makes the next id; read it from `hi` / `lo`. */
  next(): void {
    let ms = this.anchorMs + Math.floor(performance.now() - this.anchorPerf);
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      if (++this.seq > 0xfff) { ms++; this.seq = 0; }
    } else {
      this.seq = 0;
    }
    this.lastMs = ms;
    this.hi = Math.floor(ms / 1024);
    this.lo = ((((ms % 1024) << 22) | this.brokerBits | this.seq) >>> 0);
  }

  /** Makes the next id and returns it as a bigint (tests and tools). */
  nextBigInt(): bigint {
    this.next();
    return joinId(this.hi, this.lo);
  }

  /** Writes the current id (the last {@link next}) in decimal at `pos`; returns the position after it. */
  writeDecimal(target: Buffer, pos: number): number {
    const ms = this.lastMs;
    if (ms !== this.decMs) this.cacheDecimal(ms);
    let low = (this.lo & 0x3fffff) + this.decR;
    let q = this.decQ;
    if (low >= DEC_SPLIT) { low -= DEC_SPLIT; q = this.decQ1; }
    if (q.length === 0) {
      // The whole id is below 10^7: no leading zeros.
      const s = String(low);
      return pos + target.write(s, pos, 'latin1');
    }
    // A byte loop: Buffer#copy's fixed cost is larger than copying these ~12 digits.
    for (let i = 0; i < q.length; i++) target[pos++] = q[i]!;
    for (let i = 6; i >= 0; i--) {
      target[pos + i] = ZERO + (low % 10);
      low = Math.floor(low / 10);
    }
    return pos + 7;
  }

  private cacheDecimal(ms: number): void {
    const base = BigInt(ms) << 22n;
    const q = base / BigInt(DEC_SPLIT);
    this.decR = Number(base % BigInt(DEC_SPLIT));
    this.decQ = q === 0n ? Buffer.alloc(0) : Buffer.from(q.toString(), 'latin1');
    this.decQ1 = Buffer.from((q + 1n).toString(), 'latin1');
    this.decMs = ms;
  }
}
