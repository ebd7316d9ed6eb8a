/**
 * Walking the record headers of a partition log without decoding messages: from a record boundary (a segment start
 * always is one), in large reads, one callback per record on a reused view, so a scan allocates one buffer per
 * chunk and nothing per record (a record's id becomes a bigint only when the caller asks for it).
 *
 * Used where the broker must find its way by record rather than by byte: a truncation's boundary check, the
 * divergence point of a rejoining node, and the repair of consumer offsets by message id after a failover.
 */
import { CorruptRecordError, OffsetOutOfRangeError } from '../../sdk/errors.js';
import { joinId, RECORD_HEADER_SIZE, splitId } from '../../sdk/protocol/record.js';

/** What a scan needs of a log (PartitionLog has it). */
export interface ScannableLog {
  readonly topic: string;
  readonly partition: number;
  readonly startOffset: number;
  readonly readableEnd: number;
  segmentStarts(): number[];
  read(offset: number, maxSize: number): Promise<Buffer>;
}

/** One record seen by {@link scanRecords}. The same object is passed for every record: copy what you keep. */
export interface ScannedRecord {
  /** Log offset of the record's first byte. */
  readonly offset: number;
  /** Header plus DATA. */
  readonly size: number;
  readonly flag: number;
  /** High half of the id, signed (so that `(idHi, idLo)` orders as the int64 id does). */
  readonly idHi: number;
  /** Low half of the id, unsigned. */
  readonly idLo: number;
  /** The id as an int64 (allocates: ask only when needed). */
  readonly id: bigint;
}

export interface ScanOptions {
  /** Stop before the first record starting at or after this offset. Default: the log's readable end. */
  readonly to?: number;
  /** Bytes per read. Default 1 MiB; a larger record is read whole. */
  readonly chunkSize?: number;
}

const DEFAULT_CHUNK = 1 << 20;

class RecordView implements ScannedRecord {
  offset = 0;
  size = 0;
  flag = 0;
  idHi = 0;
  idLo = 0;

  get id(): bigint {
    return joinId(this.idHi, this.idLo);
  }
}

/**
 * Calls `visit` for each record from `from` (which must be a record boundary) up to `to` or the readable end;
 * `visit` returning false stops the scan. Resolves with the offset after the last record visited (`from` when none).
 * Throws CorruptRecordError when a header does not fit in its segment (`from` was not a boundary, or the log is
 * damaged), OffsetOutOfRangeError when `from` is below the log's start.
 */
export async function scanRecords(log: ScannableLog, from: number, visit: (r: ScannedRecord) => boolean | void,
  options: ScanOptions = {}): Promise<number> {
  if (from < log.startOffset) throw new OffsetOutOfRangeError(log.topic, log.partition, from, log.startOffset);
  const readableEnd = log.readableEnd;
  const to = Math.min(options.to ?? readableEnd, readableEnd);
  const chunk = options.chunkSize ?? DEFAULT_CHUNK;
  const starts = log.segmentStarts();
  const view = new RecordView();
  let seg = 0;
  let pos = from;
  let need = RECORD_HEADER_SIZE;
  while (pos < to) {
    while (seg + 1 < starts.length && starts[seg + 1]! <= pos) seg++;
    const segEnd = Math.min(starts[seg + 1] ?? readableEnd, readableEnd);
    const want = Math.min(Math.max(chunk, need), segEnd - pos);
    const buf = await log.read(pos, want);
    if (buf.length === 0) break;  // the log was cut under the scan
    let at = 0;
    need = RECORD_HEADER_SIZE;
    while (pos < to && buf.length - at >= RECORD_HEADER_SIZE) {
      const len = buf.readInt32BE(at);
      const size = RECORD_HEADER_SIZE + len;
      if (len < 0 || pos + size > segEnd) {
        throw new CorruptRecordError(log.topic, log.partition, pos,
          `record header of ${len} data bytes does not fit before ${segEnd} (not a record boundary, or a damaged log)`);
      }
      if (buf.length - at < size) { need = size; break; }
      view.offset = pos;
      view.size = size;
      view.idHi = buf.readInt32BE(at + 8);
      view.idLo = buf.readUInt32BE(at + 12);
      view.flag = buf.readInt32BE(at + 16);
      if (visit(view) === false) return pos + size;
      pos += size;
      at += size;
    }
    if (at === 0 && buf.length < want) {
      throw new CorruptRecordError(log.topic, log.partition, pos, `record cut by the end of the readable log at ${pos + buf.length}`);
    }
  }
  return pos;
}

/** The start of the segment holding `offset` (offset within [startOffset, readableEnd)). */
function segmentStartOf(log: ScannableLog, offset: number): number {
  let start = log.startOffset;
  for (const s of log.segmentStarts()) {
    if (s > offset) break;
    start = s;
  }
  return start;
}

/**
 * The start of the record holding byte `offset`, scanning from the start of its segment; the readable end when
 * `offset` is at or past it. Throws OffsetOutOfRangeError below the log's start.
 */
export async function recordStartAtOrBefore(log: ScannableLog, offset: number): Promise<number> {
  if (offset < log.startOffset) throw new OffsetOutOfRangeError(log.topic, log.partition, offset, log.startOffset);
  const end = log.readableEnd;
  if (offset >= end) return end;
  let found = end;
  await scanRecords(log, segmentStartOf(log, offset), (r) => {
    if (r.offset + r.size <= offset) return true;
    found = r.offset;
    return false;
  });
  return found;
}

/** What {@link findLargestIdAtMost} found. */
export interface LargestIdAtMost {
  /** End offset of that record; the log's start when no record qualifies. */
  readonly end: number;
  /** Its id; undefined when no record qualifies. */
  readonly id: bigint | undefined;
}

/**
 * The local record whose id is the largest at most `msgId`. Ids increase along a log, so the segments are
 * binary-searched by their first record's id (one 20-byte read each) and one segment is scanned.
 */
export async function findLargestIdAtMost(log: ScannableLog, msgId: bigint): Promise<LargestIdAtMost> {
  const end = log.readableEnd;
  const starts = log.segmentStarts().filter((s) => s < end);
  const { hi: mHi, lo: mLo } = splitId(BigInt.asUintN(64, msgId));
  const wantHi = mHi | 0;
  const atMost = (hi: number, lo: number): boolean => hi < wantHi || (hi === wantHi && lo <= mLo);
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const head = await log.read(starts[mid]!, RECORD_HEADER_SIZE);
    if (head.length < RECORD_HEADER_SIZE) {
      throw new CorruptRecordError(log.topic, log.partition, starts[mid]!, 'segment shorter than one record header');
    }
    if (atMost(head.readInt32BE(8), head.readUInt32BE(12))) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  if (found < 0) return { end: log.startOffset, id: undefined };
  let bestEnd = starts[found]!;
  let bestHi = 0;
  let bestLo = 0;
  await scanRecords(log, starts[found]!, (r) => {
    if (!atMost(r.idHi, r.idLo)) return false;
    bestEnd = r.offset + r.size;
    bestHi = r.idHi;
    bestLo = r.idLo;
    return true;
  }, { to: starts[found + 1] ?? end });
  return { end: bestEnd, id: joinId(bestHi, bestLo) };
}

/**
 * The end offset of the local record whose id is the largest at most `msgId`; the log's start when no record
 * qualifies. See {@link findLargestIdAtMost}.
 */
export async function endOfLargestIdAtMost(log: ScannableLog, msgId: bigint): Promise<number> {
  return (await findLargestIdAtMost(log, msgId)).end;
}
