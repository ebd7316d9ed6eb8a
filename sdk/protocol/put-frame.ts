/**
 * The hot-path `put` encoder (the producer's): the same bytes as `encodePut` (encode.ts) in MetaQ 1.4.4's form
 *
 * ```
 * put <topic> <partition> <len> <flag> <checksum> <opaque>\r\n<len bytes>
 * ```
 *
 * written straight into one buffer, with the `put <topic> ` prefix encoded (and the topic checked) once per topic
 * instead of once per message. The golden test checks it against `encodePut` byte for byte.
 */
import { InvalidArgumentError } from '../errors.js';
import { decimalLength, writeDecimal } from './digits.js';
import { topicNameProblem } from './names.js';

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;

/**
 * `put <topic> ` as bytes, for a topic name that passed the protocol's rule. Throws InvalidArgumentError otherwise.
 *
 * @example
 * ```ts
 * putPrefix('orders').toString(); // 'put orders '
 * ```
 */
export function putPrefix(topic: string): Buffer {
  const problem = topicNameProblem(topic);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return Buffer.from(`put ${topic} `, 'latin1');
}

/**
 * A whole `put` frame with a checksum and no transaction key. `prefix` comes from {@link putPrefix}; the numbers
 * are int32 (the caller guarantees it: partitions and flags come from checked sources, `opaque` from the link).
 *
 * @example
 * ```ts
 * encodePutFrame(putPrefix('test'), 1, 0, 907060870, 7, Buffer.from('hello')).toString();
 * // 'put test 1 5 0 907060870 7\r\nhello'
 * ```
 */
export function encodePutFrame(prefix: Buffer, partition: number, flag: number, checksum: number, opaque: number,
  body: Uint8Array): Buffer {
  const len = body.byteLength;
  // Sized exactly (one Buffer object per frame, no subarray view): this runs once per message.
  const headerLen = prefix.length + decimalLength(partition) + decimalLength(len) + decimalLength(flag) +
    decimalLength(checksum) + decimalLength(opaque) + 6;
  const out = Buffer.allocUnsafe(headerLen + len);
  let p = prefix.copy(out, 0);
  p = writeDecimal(out, p, partition);
  out[p++] = SPACE;
  p = writeDecimal(out, p, len);
  out[p++] = SPACE;
  p = writeDecimal(out, p, flag);
  out[p++] = SPACE;
  p = writeDecimal(out, p, checksum);
  out[p++] = SPACE;
  p = writeDecimal(out, p, opaque);
  out[p++] = CR;
  out[p++] = LF;
  out.set(body, p);
  return out;
}
