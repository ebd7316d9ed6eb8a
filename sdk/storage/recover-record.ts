/**
 * The recover store's record: everything needed to redeliver a message without the broker or the codec.
 *
 * ```
 * offset size field
 * 0      1    version        1
 * 1      4    attempts       uint32 BE: redeliveries from the recover store so far
 * 5      8    storedAt       float64 BE: ms since the epoch
 * 13     4    brokerId       int32 BE
 * 17     4    partition      int32 BE
 * 21     8    offset         float64 BE (log offsets stay below 2^53)
 * 29     8    nextOffset     float64 BE
 * 37     8    id             int64 BE
 * 45     4    flag           int32 BE
 * 49     4    redeliveries   uint32 BE: in-line redeliveries before it was stored
 * 53     2    topicLen       uint16 BE
 * 55     4    attrLen        int32 BE, -1 = no attribute
 * 59     ...  topic UTF-8, attribute UTF-8, payload (decompressed)
 * ```
 */
import { StorageError } from '../errors.js';
import type { Message } from '../message.js';

const VERSION = 1;
const FIXED = 59;
/** Where `attempts` sits, so it can be bumped in place. */
export const ATTEMPTS_OFFSET = 1;

/** A message kept by the recover store, as handed back for redelivery (the consumer applies its deserializer). */
export interface RecoveredEntry extends Omit<Message, 'value'> {
  /** The store's key of this entry (for markAttempt and remove). */
  readonly key: number;
  /** Redeliveries from the recover store so far (persisted). */
  readonly attempts: number;
  /** When it was stored, ms since the epoch. */
  readonly storedAt: number;
}

/**
 * Encodes a message for the recover store.
 *
 * @example
 * ```ts
 * const bytes = encodeRecoverRecord(message, Date.now());
 * ```
 */
export function encodeRecoverRecord(m: Omit<Message<unknown>, 'value'>, storedAt: number, attempts = 0): Buffer {
  const topicLen = Buffer.byteLength(m.topic, 'utf8');
  const attrLen = m.attribute === null ? -1 : Buffer.byteLength(m.attribute, 'utf8');
  const out = Buffer.allocUnsafe(FIXED + topicLen + Math.max(attrLen, 0) + m.payload.length);
  out[0] = VERSION;
  out.writeUInt32BE(attempts >>> 0, ATTEMPTS_OFFSET);
  out.writeDoubleBE(storedAt, 5);
  out.writeInt32BE(m.partition.brokerId, 13);
  out.writeInt32BE(m.partition.partition, 17);
  out.writeDoubleBE(m.offset, 21);
  out.writeDoubleBE(m.nextOffset, 29);
  out.writeBigInt64BE(BigInt.asIntN(64, m.id), 37);
  out.writeInt32BE(m.flag | 0, 45);
  out.writeUInt32BE(m.redeliveries >>> 0, 49);
  out.writeUInt16BE(topicLen, 53);
  out.writeInt32BE(attrLen, 55);
  let pos = FIXED + out.write(m.topic, FIXED, 'utf8');
  if (m.attribute !== null) pos += out.write(m.attribute, pos, 'utf8');
  m.payload.copy(out, pos);
  return out;
}

/**
 * Decodes a record of {@link encodeRecoverRecord}; `payload` is a view of `buf`. Throws StorageError when the bytes
 * are not such a record.
 *
 * @example
 * ```ts
 * const entry = decodeRecoverRecord(key, bytes);
 * ```
 */
export function decodeRecoverRecord(key: number, buf: Buffer): RecoveredEntry {
  if (buf.length < FIXED || buf[0] !== VERSION) {
    throw new StorageError(`recover record ${key}: unknown version ${buf[0] ?? 'none'} or short (${buf.length} bytes)`);
  }
  const topicLen = buf.readUInt16BE(53);
  const attrLen = buf.readInt32BE(55);
  const attrEnd = FIXED + topicLen + Math.max(attrLen, 0);
  if (attrLen < -1 || attrEnd > buf.length) throw new StorageError(`recover record ${key}: lengths exceed its ${buf.length} bytes`);
  return {
    key,
    attempts: buf.readUInt32BE(ATTEMPTS_OFFSET),
    storedAt: buf.readDoubleBE(5),
    topic: buf.toString('utf8', FIXED, FIXED + topicLen),
    partition: { brokerId: buf.readInt32BE(13), partition: buf.readInt32BE(17) },
    offset: buf.readDoubleBE(21),
    nextOffset: buf.readDoubleBE(29),
    id: buf.readBigInt64BE(37),
    flag: buf.readInt32BE(45),
    redeliveries: buf.readUInt32BE(49),
    attribute: attrLen < 0 ? null : buf.toString('utf8', FIXED + topicLen, attrEnd),
    payload: buf.subarray(attrEnd),
  };
}
