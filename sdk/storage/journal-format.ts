/**
 * The journal's on-disk record and the scan that validates a segment. A segment file is a plain concatenation of
 * records; the header carries its own CRC, so a damaged length is never trusted.
 *
 * ```
 * offset size field
 * 0      2    magic     0x6a 0x72 ("jr")
 * 2      1    version   1
 * 3      1    type      1 = put (body = the record), 2 = remove (body empty; seq = the removed record)
 * 4      4    bodyLen   uint32 BE
 * 8      8    seq       uint64 BE
 * 16     4    bodyCrc   uint32 BE: CRC32(body)
 * 20     4    headerCrc uint32 BE: CRC32(bytes 0..20)
 * 24     N    body
 * ```
 *
 * A put whose seq is already live replaces it (an update); the journal's order stays the order of first appends.
 */
import { crc32 } from 'node:zlib';

export const JOURNAL_HEADER_SIZE = 24;
export const JOURNAL_VERSION = 1;
const MAGIC_0 = 0x6a;
const MAGIC_1 = 0x72;
/** Larger bodies are refused on append and treated as garbage by the scan. */
export const MAX_JOURNAL_BODY = 256 * 1024 * 1024;
const TWO_32 = 0x1_0000_0000;

export const JournalRecordTypes = { PUT: 1, REMOVE: 2 } as const;
export type JournalRecordType = (typeof JournalRecordTypes)[keyof typeof JournalRecordTypes];

/**
 * Writes one record (header + body) into `target` at `pos`; returns the position after it.
 *
 * @example
 * ```ts
 * const out = Buffer.alloc(JOURNAL_HEADER_SIZE + 5);
 * writeJournalRecord(out, 0, JournalRecordTypes.PUT, 7, Buffer.from('hello'));
 * ```
 */
export function writeJournalRecord(target: Buffer, pos: number, type: JournalRecordType, seq: number,
  body: Uint8Array | null): number {
  const len = body === null ? 0 : body.byteLength;
  const bodyPos = pos + JOURNAL_HEADER_SIZE;
  let bodyCrc = 0;
  if (body !== null && len > 0) {
    target.set(body, bodyPos);
    bodyCrc = crc32(target.subarray(bodyPos, bodyPos + len));
  }
  target[pos] = MAGIC_0;
  target[pos + 1] = MAGIC_1;
  target[pos + 2] = JOURNAL_VERSION;
  target[pos + 3] = type;
  target.writeUInt32BE(len, pos + 4);
  target.writeUInt32BE(Math.floor(seq / TWO_32), pos + 8);
  target.writeUInt32BE(seq >>> 0, pos + 12);
  target.writeUInt32BE(bodyCrc >>> 0, pos + 16);
  target.writeUInt32BE(crc32(target.subarray(pos, pos + 20)) >>> 0, pos + 20);
  return bodyPos + len;
}

/** Why the bytes at a position are not a valid record. */
export const JournalCheck = {
  /** Fewer than a header's bytes remain. */
  SHORT_HEADER: -1,
  /** The header is valid but its body runs past the end of the bytes. */
  SHORT_BODY: -2,
  /** Magic, version, type, length or header CRC is wrong: the header (and so its length) cannot be trusted. */
  BAD_HEADER: -3,
  /** The header is valid but the body's CRC does not match. */
  BAD_BODY: -4,
} as const;
export type JournalCheckFailure = (typeof JournalCheck)[keyof typeof JournalCheck];

/** Human-readable reason for a {@link JournalCheck} code. */
export function describeJournalCheck(code: JournalCheckFailure): string {
  switch (code) {
    case JournalCheck.SHORT_HEADER: return 'incomplete header';
    case JournalCheck.SHORT_BODY: return 'incomplete body';
    case JournalCheck.BAD_HEADER: return 'damaged header';
    case JournalCheck.BAD_BODY: return 'body checksum mismatch';
  }
}

/**
 * Checks the record at `pos` in `buf[0, end)`: its total size when whole and valid, else a negative
 * {@link JournalCheck} code.
 *
 * @example
 * ```ts
 * const size = checkJournalRecord(buf, 0, buf.length);
 * if (size > 0) console.log(journalRecordSeq(buf, 0));
 * ```
 */
export function checkJournalRecord(buf: Buffer, pos: number, end: number): number {
  if (end - pos < JOURNAL_HEADER_SIZE) return JournalCheck.SHORT_HEADER;
  if (buf[pos] !== MAGIC_0 || buf[pos + 1] !== MAGIC_1 || buf[pos + 2] !== JOURNAL_VERSION) {
    return JournalCheck.BAD_HEADER;
  }
  const type = buf[pos + 3];
  if (type !== JournalRecordTypes.PUT && type !== JournalRecordTypes.REMOVE) return JournalCheck.BAD_HEADER;
  if ((crc32(buf.subarray(pos, pos + 20)) >>> 0) !== buf.readUInt32BE(pos + 20)) return JournalCheck.BAD_HEADER;
  const len = buf.readUInt32BE(pos + 4);
  if (len > MAX_JOURNAL_BODY) return JournalCheck.BAD_HEADER;
  const size = JOURNAL_HEADER_SIZE + len;
  if (end - pos < size) return JournalCheck.SHORT_BODY;
  const bodyCrc = len === 0 ? 0 : crc32(buf.subarray(pos + JOURNAL_HEADER_SIZE, pos + size)) >>> 0;
  if (bodyCrc !== buf.readUInt32BE(pos + 16)) return JournalCheck.BAD_BODY;
  return size;
}

/** The seq of the record whose header starts at `pos` (the header must be valid). */
export function journalRecordSeq(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos + 8) * TWO_32 + buf.readUInt32BE(pos + 12);
}

/** The type of the record whose header starts at `pos`. */
export function journalRecordType(buf: Buffer, pos: number): JournalRecordType {
  return buf[pos + 3] === JournalRecordTypes.REMOVE ? JournalRecordTypes.REMOVE : JournalRecordTypes.PUT;
}

/** One valid record found by {@link scanJournalSegment}. */
export interface ScannedRecord {
  readonly type: JournalRecordType;
  readonly seq: number;
  readonly pos: number;
  readonly size: number;
}

/** A damaged byte range that valid records follow: skipped, left in place as dead bytes. */
export interface DamagedRange {
  readonly from: number;
  readonly to: number;
  readonly reason: string;
  /** The seq named by the header, when the header itself was valid. */
  readonly seq?: number;
}

export interface SegmentScan {
  readonly records: ScannedRecord[];
  readonly damaged: DamagedRange[];
  /** Where the valid data ends: bytes from here on are a torn tail to cut. */
  readonly validEnd: number;
  /** Why the tail was cut, when `validEnd` is before the end. */
  readonly tailReason?: string;
}

/**
 * Scans a whole segment. A damaged record followed by valid records is skipped (by its length when its header is
 * valid, else by searching for the next valid header); damage that no valid record follows is a torn tail.
 *
 * @example
 * ```ts
 * const scan = scanJournalSegment(await readFile(path));
 * if (scan.validEnd < size) await truncate(path, scan.validEnd);
 * ```
 */
export function scanJournalSegment(buf: Buffer): SegmentScan {
  const records: ScannedRecord[] = [];
  const damaged: DamagedRange[] = [];
  const end = buf.length;
  let pos = 0;
  while (pos < end) {
    const size = checkJournalRecord(buf, pos, end);
    if (size > 0) {
      records.push({ type: journalRecordType(buf, pos), seq: journalRecordSeq(buf, pos), pos, size });
      pos += size;
      continue;
    }
    const reason = describeJournalCheck(size as JournalCheckFailure);
    // A valid header whose body runs past the end, or a cut header, can only be the tail being written.
    if (size === JournalCheck.SHORT_HEADER || size === JournalCheck.SHORT_BODY) {
      return { records, damaged, validEnd: pos, tailReason: reason };
    }
    // A valid header's length can be trusted to skip a bad body; a bad header's cannot, so search for the next one.
    const from = size === JournalCheck.BAD_BODY ? pos + JOURNAL_HEADER_SIZE + buf.readUInt32BE(pos + 4) : pos + 1;
    const next = findNextRecord(buf, from, end);
    if (next < 0) return { records, damaged, validEnd: pos, tailReason: reason };
    const seq = size === JournalCheck.BAD_BODY ? journalRecordSeq(buf, pos) : undefined;
    damaged.push(seq === undefined ? { from: pos, to: next, reason } : { from: pos, to: next, reason, seq });
    pos = next;
  }
  return { records, damaged, validEnd: pos };
}

/** The first position in [from, end) where a whole valid record starts, or -1. */
function findNextRecord(buf: Buffer, from: number, end: number): number {
  if (from < end && checkJournalRecord(buf, from, end) > 0) return from;
  for (let p = buf.indexOf(MAGIC_0, from); p >= 0 && p < end; p = buf.indexOf(MAGIC_0, p + 1)) {
    if (buf[p + 1] === MAGIC_1 && checkJournalRecord(buf, p, end) > 0) return p;
  }
  return -1;
}
