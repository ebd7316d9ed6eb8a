/**
 * Where a rejoining node's log parts from its new master's. Replication copies records byte for byte at the
 * master's offsets, so two logs of one partition are byte-identical up to the point where they diverged (the old
 * master's unreplicated tail, or records the new master took after the failover). The search compares raw bytes
 * backwards from the shorter end in windows that double while even their first bytes differ, so its cost follows
 * the divergent bytes, not the log; the cut then lands on the start of the local record holding the first
 * differing byte (one scan of that record's segment).
 */
import { OffsetOutOfRangeError } from '../../sdk/errors.js';
import type { ScannableLog } from '../store/record-scan.js';
import { recordStartAtOrBefore } from '../store/record-scan.js';

/**
 * The master's raw log bytes `[offset, offset + n)`, n ≤ maxSize (what a `get` answers; fewer bytes are fine, the
 * caller asks again). Rejects with OffsetOutOfRangeError, `nearest` = the master's first offset, below its start.
 */
export type ReadMaster = (offset: number, maxSize: number) => Promise<Buffer>;

export interface DivergenceOptions {
  /** Bytes compared first. Default 64 KiB. */
  readonly initialWindow?: number;
  /**
   * How many leading bytes of a window must agree before it is trusted to start inside the common prefix (bytes
   * after a divergence often agree by chance, e.g. the zero high byte of a length). Default 1 KiB.
   */
  readonly probe?: number;
  /** Largest single read, local or master. Default 1 MiB. */
  readonly readSize?: number;
}

const DEFAULTS = { initialWindow: 64 * 1024, probe: 1024, readSize: 1 << 20 } as const;

/**
 * The offset at which the local log must be cut to become a prefix of the master's (whose end is `masterEnd`), or
 * undefined when it already is one. Also undefined when the logs do not overlap (the master starts after the local
 * end): nothing can be compared, and the replicator's fetch will be moved by the master.
 */
export async function findDivergence(log: ScannableLog, readMaster: ReadMaster, masterEnd: number,
  options: DivergenceOptions = {}): Promise<number | undefined> {
  const o = { ...DEFAULTS, ...options };
  const localEnd = log.readableEnd;
  const limit = Math.min(localEnd, masterEnd);
  let lower = log.startOffset;
  let hi = limit;
  let window = o.initialWindow;
  let diff: number | undefined;
  while (hi > lower) {
    const lo = Math.max(lower, hi - window);
    let theirs: Buffer;
    try {
      theirs = await readRange(readMaster, lo, hi - lo, o.readSize);
    } catch (err) {
      if (!(err instanceof OffsetOutOfRangeError) || err.nearest <= lower) throw err;
      lower = err.nearest;  // the master's retention removed what lies before: compare from its start
      continue;
    }
    const ours = await readRange((at, n) => log.read(at, n), lo, hi - lo, o.readSize);
    const i = firstDifference(ours, theirs);
    if (i >= 0) diff = lo + i;
    if (i < 0 || i >= Math.min(o.probe, hi - lo) || lo === lower) break;
    hi = lo;
    window *= 2;
  }
  if (diff !== undefined) return recordStartAtOrBefore(log, diff);
  if (localEnd <= masterEnd) return undefined;
  return masterEnd <= log.startOffset ? log.startOffset : recordStartAtOrBefore(log, masterEnd);
}

/** `[offset, offset + length)` read in pieces; shorter only where the source has no more bytes. */
async function readRange(read: ReadMaster, offset: number, length: number, readSize: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  while (got < length) {
    const b = await read(offset + got, Math.min(readSize, length - got));
    if (b.length === 0) break;
    const part = b.length > length - got ? b.subarray(0, length - got) : b;
    parts.push(part);
    got += part.length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
}

const BLOCK = 4096;

/** Index of the first differing byte of `a` and `b` (a length difference counts), or -1 when equal. */
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let at = 0; at < n; at += BLOCK) {
    const end = Math.min(at + BLOCK, n);
    if (a.subarray(at, end).equals(b.subarray(at, end))) continue;
    for (let i = at; i < end; i++) if (a[i] !== b[i]) return i;
  }
  return a.length === b.length ? -1 : n;
}
