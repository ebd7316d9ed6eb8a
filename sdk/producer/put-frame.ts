/**
 * The producer's `put` encoder: the same bytes as `encodePut` (sdk/protocol/encode.ts) in MetaQ 1.4.4's form
 *
 * ```
 * put <topic> <partition> <len> <flag> <checksum> <opaque>\r\n<len bytes>
 * ```
 *
 * written straight into one buffer, with the `put <topic> ` prefix encoded (and the topic checked) once per topic
 * instead of once per message. The golden test checks it against `encodePut` byte for byte.
 */
import { InvalidArgumentError } from '../errors.js';
import { topicNameProblem } from '../protocol/names.js';

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const MINUS = 0x2d;

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
  const headerLen = prefix.length + intLength(partition) + intLength(len) + intLength(flag) + intLength(checksum) +
    intLength(opaque) + 6;
  const out = Buffer.allocUnsafe(headerLen + len);
  let p = prefix.copy(out, 0);
  p = writeInt(out, p, partition);
  out[p++] = SPACE;
  p = writeInt(out, p, len);
  out[p++] = SPACE;
  p = writeInt(out, p, flag);
  out[p++] = SPACE;
  p = writeInt(out, p, checksum);
  out[p++] = SPACE;
  p = writeInt(out, p, opaque);
  out[p++] = CR;
  out[p++] = LF;
  out.set(body, p);
  return out;
}

/** Characters of an int32 in decimal, sign included. */
function intLength(v: number): number {
  if (v < 0) return 1 + intLength(-v);
  if (v < 100000) return v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : 5;
  return v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
}

/** Writes an int32 in decimal at `pos`; returns the position after it. */
function writeInt(buf: Buffer, pos: number, v: number): number {
  if (v < 0) {
    buf[pos++] = MINUS;
    v = -v;
  }
  const end = pos + intLength(v);
  let q = end;
  do {
    buf[--q] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  } while (v > 0);
  return end;
}
