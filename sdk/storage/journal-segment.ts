/**
 * One segment file of a journal and what the journal knows about it: its open file (replaced when the segment is
 * compacted), its size, how many of its records are live, and which seqs it physically holds (needed to decide
 * whether a remove record may be dropped: only when no older segment still holds a copy of the removed record).
 */
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export const SEGMENT_SUFFIX = '.jnl';
export const COMPACT_SUFFIX = '.compact';

/** `<20-digit first seq>.jnl` */
export function segmentFileName(baseSeq: number): string {
  return `${String(baseSeq).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** The base seq of a segment file name, or undefined when the name is not a segment's. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = /^(\d{20})\.jnl$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/**
 * An open file shared by readers. A compaction swaps in a new file; the old one is closed once its in-flight
 * reads are done, so a read never sees a position of one file applied to the other.
 */
export class SegmentFile {
  private readers = 0;
  private retired = false;
  private closed: Promise<void> | undefined;

  constructor(readonly handle: FileHandle) {}

  /** Reads `length` bytes at `position` into a new buffer; fewer when the file is shorter. */
  async read(position: number, length: number): Promise<Buffer> {
    this.readers++;
    try {
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await this.handle.read(buf, done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === length ? buf : buf.subarray(0, done);
    } finally {
      if (--this.readers === 0 && this.retired) void this.close();
    }
  }

  /** No new reads will start; closes the file once the running ones are done. */
  retire(): Promise<void> {
    this.retired = true;
    return this.readers === 0 ? this.close() : Promise.resolve();
  }

  private close(): Promise<void> {
    // A close error on a retired read-only view changes nothing on disk; there is nobody left to tell.
    this.closed ??= this.handle.close().catch(() => undefined);
    return this.closed;
  }
}

/** Where a live record is: its segment, its first byte there, its size with the header. */
export interface RecordLocation {
  seg: Segment;
  pos: number;
  size: number;
}

export class Segment {
  readonly path: string;
  /** Bytes of complete writes: everything before it is stable. */
  size = 0;
  liveCount = 0;
  liveBytes = 0;
  /** Seqs of the put records physically in the file (live or not). */
  private phys: number[] = [];
  private physSorted = true;
  /** Seqs named by the remove records physically in the file. */
  removes: number[] = [];

  constructor(readonly dir: string, readonly baseSeq: number, public file: SegmentFile) {
    this.path = join(dir, segmentFileName(baseSeq));
  }

  get name(): string {
    return segmentFileName(this.baseSeq);
  }

  /**
   * Bytes of remove records a compaction had to keep (an older segment still holds their records). Counted as live
   * so the segment is not rewritten again and again with the same content; deletion re-checks them exactly.
   */
  keptRemoveBytes = 0;

  get deadBytes(): number {
    return this.size - this.liveBytes - this.keptRemoveBytes;
  }

  addPhys(seq: number): void {
    const n = this.phys.length;
    if (n > 0 && this.phys[n - 1]! > seq) this.physSorted = false;
    this.phys.push(seq);
  }

  setPhys(seqs: number[]): void {
    this.phys = seqs;
    this.physSorted = false;
  }

  /** True when the file holds a put record of `seq`. */
  holds(seq: number): boolean {
    const a = this.phys;
    if (a.length === 0) return false;
    if (!this.physSorted) {
      a.sort((x, y) => x - y);
      this.physSorted = true;
    }
    if (seq < a[0]! || seq > a[a.length - 1]!) return false;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid]!;
      if (v === seq) return true;
      if (v < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}

/** Writes all of `buf` at `position` (a short write continues where it stopped). */
export async function writeFully(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error(`write wrote 0 of ${buf.length - done} bytes`), { code: 'EIO' });
    done += bytesWritten;
  }
}

