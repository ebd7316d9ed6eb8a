/**
 * The records of the transaction journal (`<dataLogPath>/transactions/<seq>.txlog`).
 *
 * ```
 * file   = magic "MQTXLOG1" record*
 * record = bodyLen:u32 crc:u32 (CRC32 of body) body
 * body   = type:u8 key:str16 fields
 *   1 begin        timeoutSec:i32
 *   2 put          topic:str16 partition:i32 flag:i32 idHi:u32 idLo:u32 crc:u32 dataLen:u32 data
 *   3 prepare
 *   4 commit       wasPrepared:u8 parts:u16 (topic:str16 partition:i32 from:f64)*   the decision, before any append
 *   5 commit-done                                                                 every append of the commit stored
 *   6 rollback
 *   7 forget
 * str16  = len:u16 utf8
 * ```
 * Numbers are big-endian. `from` is the partition's end offset when the commit was decided: the transaction's
 * records, if they landed, lie after it (recovery scans from there to tell which did).
 */
import { crc32 } from 'node:zlib';

export const JOURNAL_MAGIC = Buffer.from('MQTXLOG1', 'latin1');
/** bodyLen + crc. */
export const FRAME_HEADER_SIZE = 8;

export const TxRecordCodes = {
  begin: 1, put: 2, prepare: 3, commit: 4, 'commit-done': 5, rollback: 6, forget: 7,
} as const;
export type TxRecordType = keyof typeof TxRecordCodes;

/** One message of a transaction, as journalled at put time and appended at commit. */
export interface TxPut {
  readonly topic: string;
  readonly partition: number;
  readonly flag: number;
  readonly idHi: number;
  readonly idLo: number;
  /** CRC32(data) & 0x7fffffff, the stored record's checksum. */
  readonly crc: number;
  readonly data: Buffer;
}

/** Where a committed transaction's records go in one partition. */
export interface CommitPart {
  readonly topic: string;
  readonly partition: number;
  /** The partition's end offset when the commit was decided. */
  readonly from: number;
}

export type TxRecord =
  | { readonly type: 'begin'; readonly key: string; readonly timeoutSec: number }
  | { readonly type: 'put'; readonly key: string; readonly put: TxPut }
  | { readonly type: 'commit'; readonly key: string; readonly wasPrepared: boolean; readonly parts: readonly CommitPart[] }
  | { readonly type: 'prepare' | 'commit-done' | 'rollback' | 'forget'; readonly key: string };

const CODE_TYPES = new Map<number, TxRecordType>(
  Object.entries(TxRecordCodes).map(([k, v]) => [v, k as TxRecordType]));

function strLen(s: string): number {
  return 2 + Buffer.byteLength(s, 'utf8');
}

function bodySize(r: TxRecord): number {
  let n = 1 + strLen(r.key);
  switch (r.type) {
    case 'begin': return n + 4;
    case 'put': return n + strLen(r.put.topic) + 4 * 6 + r.put.data.length;
    case 'commit':
      n += 3;
      for (const p of r.parts) n += strLen(p.topic) + 4 + 8;
      return n;
    default: return n;
  }
}

function writeStr(b: Buffer, p: number, s: string): number {
  const n = b.write(s, p + 2, 'utf8');
  b.writeUInt16BE(n, p);
  return p + 2 + n;
}

/** One framed record (header + body), ready to append. */
export function encodeTxRecord(r: TxRecord): Buffer {
  const size = bodySize(r);
  const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE + size);
  let p = FRAME_HEADER_SIZE;
  b[p++] = TxRecordCodes[r.type];
  p = writeStr(b, p, r.key);
  if (r.type === 'begin') {
    p = b.writeInt32BE(r.timeoutSec, p);
  } else if (r.type === 'put') {
    const m = r.put;
    p = writeStr(b, p, m.topic);
    p = b.writeInt32BE(m.partition, p);
    p = b.writeInt32BE(m.flag, p);
    p = b.writeUInt32BE(m.idHi >>> 0, p);
    p = b.writeUInt32BE(m.idLo >>> 0, p);
    p = b.writeUInt32BE(m.crc >>> 0, p);
    p = b.writeUInt32BE(m.data.length, p);
    p += m.data.copy(b, p);
  } else if (r.type === 'commit') {
    b[p++] = r.wasPrepared ? 1 : 0;
    p = b.writeUInt16BE(r.parts.length, p);
    for (const part of r.parts) {
      p = writeStr(b, p, part.topic);
      p = b.writeInt32BE(part.partition, p);
      p = b.writeDoubleBE(part.from, p);
    }
  }
  b.writeUInt32BE(size, 0);
  b.writeUInt32BE(crc32(b.subarray(FRAME_HEADER_SIZE, p)) >>> 0, 4);
  return b;
}

/** Why a frame could not be decoded at some position. */
export const FrameProblems = {
  INCOMPLETE: 'incomplete record (torn tail)',
  BAD_CRC: 'CRC mismatch',
  BAD_BODY: 'malformed record body',
} as const;
export type FrameProblem = (typeof FrameProblems)[keyof typeof FrameProblems];

export type DecodedFrame =
  | { readonly ok: true; readonly record: TxRecord; readonly size: number }
  | { readonly ok: false; readonly problem: FrameProblem };

/** Decodes the frame at `pos` of `buf` (a whole journal file); `data` of a put is copied out of `buf`. */
export function decodeTxRecord(buf: Buffer, pos: number, maxBody: number): DecodedFrame {
  if (buf.length - pos < FRAME_HEADER_SIZE) return { ok: false, problem: FrameProblems.INCOMPLETE };
  const len = buf.readUInt32BE(pos);
  if (len > maxBody) return { ok: false, problem: FrameProblems.BAD_BODY };
  const start = pos + FRAME_HEADER_SIZE;
  const end = start + len;
  if (end > buf.length) return { ok: false, problem: FrameProblems.INCOMPLETE };
  if ((crc32(buf.subarray(start, end)) >>> 0) !== buf.readUInt32BE(pos + 4)) {
    return { ok: false, problem: FrameProblems.BAD_CRC };
  }
  try {
    return { ok: true, record: decodeBody(buf, start, end), size: FRAME_HEADER_SIZE + len };
  } catch {
    return { ok: false, problem: FrameProblems.BAD_BODY };
  }
}

function decodeBody(buf: Buffer, start: number, end: number): TxRecord {
  let p = start;
  const need = (n: number): void => {
    if (p + n > end) throw new RangeError('record body too short');
  };
  const str = (): string => {
    need(2);
    const n = buf.readUInt16BE(p);
    need(2 + n);
    const s = buf.toString('utf8', p + 2, p + 2 + n);
    p += 2 + n;
    return s;
  };
  const u32 = (): number => { need(4); const v = buf.readUInt32BE(p); p += 4; return v; };
  const i32 = (): number => { need(4); const v = buf.readInt32BE(p); p += 4; return v; };
  need(1);
  const type = CODE_TYPES.get(buf[p++]!);
  if (type === undefined) throw new RangeError('unknown record type');
  const key = str();
  switch (type) {
    case 'begin': return { type, key, timeoutSec: i32() };
    case 'put': {
      const topic = str();
      const partition = i32();
      const flag = i32();
      const idHi = u32();
      const idLo = u32();
      const crc = u32();
      const len = u32();
      need(len);
      const data = Buffer.from(buf.subarray(p, p + len));
      p += len;
      return { type, key, put: { topic, partition, flag, idHi, idLo, crc, data } };
    }
    case 'commit': {
      need(3);
      const wasPrepared = buf[p++] === 1;
      const n = buf.readUInt16BE(p);
      p += 2;
      const parts: CommitPart[] = [];
      for (let i = 0; i < n; i++) {
        const topic = str();
        const partition = i32();
        need(8);
        const from = buf.readDoubleBE(p);
        p += 8;
        parts.push({ topic, partition, from });
      }
      return { type, key, wasPrepared, parts };
    }
    default: return { type, key };
  }
}
