/**
 * The stored record, byte for byte as MetaQ 1.4 writes it. A partition log is a plain concatenation of
 * records, and a `value` body is a contiguous slice of that log (its last record may be cut).
 *
 * ```
 * offset size field
 * 0      4    msgLen   int32 BE: length of DATA (excludes this header)
 * 4      4    checksum int32 BE: CRC32(DATA) & 0x7fffffff
 * 8      8    msgId    int64 BE: broker-assigned id
 * 16     4    flag     int32 BE: bit0 = DATA starts with an attribute; bits 16-18 ours (compression type, see sdk/codec/compression.ts)
 * 20     N    DATA     [attrLen int32 BE + attr UTF-8 when bit0] + payload
 * ```
 */
import { crc32Masked, crc32MaskedRange } from './crc32.js';
import { CorruptRecordError, InvalidArgumentError } from '../errors.js';

export const RECORD_HEADER_SIZE = 20;
/** Flag bit 0: DATA starts with a length-prefixed attribute. */
export const FLAG_ATTRIBUTE = 0x1;
/** Largest DATA a MetaQ 1.4 consumer accepts (notify.remoting.max_read_buffer_size). */
export const DEFAULT_MAX_MESSAGE_SIZE = 2 * 1024 * 1024;

const TWO_32 = 0x1_0000_0000;

export { crc32Masked } from './crc32.js';

/** The DATA part of a record (what `put` carries) and the flag describing it. */
export interface EncodedPayload {
  readonly data: Buffer;
  readonly flag: number;
}

/**
 * Builds a record's DATA from a payload and an optional attribute. An attribute, even `''`, sets flag bit0
 * and is stored as `attrLen int32 + UTF-8 bytes` before the payload; `extraFlags` are OR-ed into the flag.
 */
export function encodePayload(payload: Uint8Array, attribute: string | null = null, extraFlags = 0): EncodedPayload {
  if (attribute === null) {
    return { data: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), flag: extraFlags & ~FLAG_ATTRIBUTE };
  }
  const attrLen = Buffer.byteLength(attribute, 'utf8');
  const data = Buffer.allocUnsafe(4 + attrLen + payload.byteLength);
  data.writeInt32BE(attrLen, 0);
  data.write(attribute, 4, 'utf8');
  data.set(payload, 4 + attrLen);
  return { data, flag: extraFlags | FLAG_ATTRIBUTE };
}

/** Splits DATA into attribute and payload. Throws InvalidArgumentError if the attribute length is impossible. */
export function decodePayload(data: Buffer, flag: number): { attribute: string | null; payload: Buffer } {
  if ((flag & FLAG_ATTRIBUTE) === 0) return { attribute: null, payload: data };
  if (data.length < 4) throw new InvalidArgumentError(`attribute flag set but DATA has only ${data.length} bytes`);
  const attrLen = data.readInt32BE(0);
  if (attrLen < 0 || 4 + attrLen > data.length) {
    throw new InvalidArgumentError(`attribute length ${attrLen} does not fit in DATA of ${data.length} bytes`);
  }
  return { attribute: data.toString('utf8', 4, 4 + attrLen), payload: data.subarray(4 + attrLen) };
}

/** Splits a non-negative int64 into its high and low 32-bit halves. */
export function splitId(id: bigint): { hi: number; lo: number } {
  return { hi: Number((id >> 32n) & 0xffffffffn), lo: Number(id & 0xffffffffn) };
}

/** Joins 32-bit halves into an int64. */
export function joinId(hi: number, lo: number): bigint {
  return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
}

/** Writes a 20-byte record header at `pos`. */
export function writeRecordHeader(
  target: Buffer, pos: number, dataLength: number, crc: number, idHi: number, idLo: number, flag: number,
): void {
  target.writeInt32BE(dataLength, pos);
  target.writeInt32BE(crc, pos + 4);
  target.writeUInt32BE(idHi >>> 0, pos + 8);
  target.writeUInt32BE(idLo >>> 0, pos + 12);
  target.writeInt32BE(flag, pos + 16);
}

/** Encodes a whole record (header + DATA) with its checksum computed here. */
export function encodeRecord(id: bigint, flag: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_SIZE + data.byteLength);
  const { hi, lo } = splitId(id);
  writeRecordHeader(out, 0, data.byteLength, crc32Masked(data), hi, lo, flag);
  out.set(data, RECORD_HEADER_SIZE);
  return out;
}

/** Why a record at some position is not valid; see {@link checkRecord}. */
export const RecordCheck = {
  /** Fewer than 20 bytes remain: a cut header (normal at the end of a fetch window). */
  INCOMPLETE_HEADER: -1,
  /** The header is whole but the DATA is cut (normal at the end of a fetch window). */
  INCOMPLETE_DATA: -2,
  /** msgLen is negative or above the limit: garbage, not a record. */
  BAD_LENGTH: -3,
  /** The CRC of DATA does not match the header. */
  BAD_CRC: -4,
} as const;
export type RecordCheckFailure = (typeof RecordCheck)[keyof typeof RecordCheck];

/** Human-readable reason for a {@link RecordCheck} code. */
export function describeRecordCheck(code: RecordCheckFailure): string {
  switch (code) {
    case RecordCheck.INCOMPLETE_HEADER: return 'incomplete header';
    case RecordCheck.INCOMPLETE_DATA: return 'incomplete data';
    case RecordCheck.BAD_LENGTH: return 'invalid length';
    case RecordCheck.BAD_CRC: return 'checksum mismatch';
  }
}

/**
 * Checks the record starting at `pos` in `buf[pos, end)`: returns its total size (header + DATA) when it is
 * whole and its CRC matches, otherwise a negative {@link RecordCheck} code. With `verifyCrc = false` only the
 * framing is checked (used to skip over records cheaply).
 */
export function checkRecord(buf: Uint8Array, pos: number, end: number, maxDataSize: number, verifyCrc = true): number {
  if (end - pos < RECORD_HEADER_SIZE) return RecordCheck.INCOMPLETE_HEADER;
  const len = ((buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!);
  if (len < 0 || len > maxDataSize) return RecordCheck.BAD_LENGTH;
  const size = RECORD_HEADER_SIZE + len;
  if (end - pos < size) return RecordCheck.INCOMPLETE_DATA;
  if (verifyCrc) {
    const stored = ((buf[pos + 4]! << 24) | (buf[pos + 5]! << 16) | (buf[pos + 6]! << 8) | buf[pos + 7]!) >>> 0;
    if (crc32MaskedRange(buf, pos + RECORD_HEADER_SIZE, pos + size) !== stored) return RecordCheck.BAD_CRC;
  }
  return size;
}

/** One message decoded from a message set. */
export interface DecodedMessage {
  readonly id: bigint;
  readonly flag: number;
  /** Absolute log offset of the record's first byte. */
  readonly offset: number;
  /** Absolute log offset just after the record: the offset to commit once this message is processed. */
  readonly nextOffset: number;
  readonly attribute: string | null;
  readonly payload: Buffer;
}

export interface DecodeMessageSetOptions {
  /** Log offset of `buf[0]`. */
  readonly baseOffset: number;
  /** For error context. */
  readonly topic?: string;
  readonly partition?: number;
  readonly maxMessageSize?: number;
  /** Default true. Turning it off is for negative controls only. */
  readonly verifyCrc?: boolean;
}

export interface DecodedMessageSet {
  readonly messages: DecodedMessage[];
  /** Bytes of whole records decoded; `baseOffset + bytesConsumed` is where the next fetch starts. */
  readonly bytesConsumed: number;
  /** True when bytes remained that do not form a whole record (a cut tail). */
  readonly truncatedTail: boolean;
}

/**
 * Decodes the whole records of a fetched message set, stopping at a cut tail. A record that fails its length
 * or CRC check raises {@link CorruptRecordError}: corrupt bytes are never returned as data.
 */
export function decodeMessageSet(buf: Buffer, options: DecodeMessageSetOptions): DecodedMessageSet {
  const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const verify = options.verifyCrc ?? true;
  const messages: DecodedMessage[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const size = checkRecord(buf, pos, buf.length, max, verify);
    if (size === RecordCheck.INCOMPLETE_HEADER || size === RecordCheck.INCOMPLETE_DATA) break;
    if (size < 0) {
      throw new CorruptRecordError(options.topic ?? '?', options.partition ?? -1, options.baseOffset + pos,
        describeRecordCheck(size as RecordCheckFailure));
    }
    const flag = buf.readInt32BE(pos + 16);
    const { attribute, payload } = decodePayload(buf.subarray(pos + RECORD_HEADER_SIZE, pos + size), flag);
    messages.push({
      id: joinId(buf.readUInt32BE(pos + 8), buf.readUInt32BE(pos + 12)),
      flag,
      offset: options.baseOffset + pos,
      nextOffset: options.baseOffset + pos + size,
      attribute,
      payload,
    });
    pos += size;
  }
  return { messages, bytesConsumed: pos, truncatedTail: pos < buf.length };
}

/** Decimal text of an int64 id given as 32-bit halves. */
export function idToDecimal(hi: number, lo: number): string {
  return (BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0))).toString();
}

/** Both halves of an id from a non-negative safe number (ids below 2^53 only; tests and tools). */
export function idFromNumber(n: number): { hi: number; lo: number } {
  return { hi: Math.floor(n / TWO_32), lo: n >>> 0 };
}
