/**
 * Reads the body of a successful `put` answer, `"<msgId> <partition> <offset>"`, in place: the producer sees one per
 * message, so the bytes are scanned once instead of going through a string and a regular expression. Anything
 * unusual is handed to `parsePutResult`, which explains what is wrong.
 */
import { parsePutResult } from '../protocol/message-id.js';

const SPACE = 0x20;
const ZERO = 0x30;

/** The message id and offset of a put answer. */
export interface PutAck {
  readonly id: bigint;
  readonly offset: number;
}

/**
 * Parses a put answer body. Throws ProtocolError (state `put-result`) when it is malformed.
 *
 * @example
 * ```ts
 * parseAck(Buffer.from('7038352640897024 3 1024')); // { id: 7038352640897024n, offset: 1024 }
 * ```
 */
export function parseAck(body: Buffer): PutAck {
  const n = body.length;
  const s1 = body.indexOf(SPACE);
  const s2 = s1 < 0 ? -1 : body.indexOf(SPACE, s1 + 1);
  // Ids are non-negative and at most 19 digits; a fast path needs a plain shape, the rest goes the slow way.
  if (s1 <= 0 || s1 > 19 || s2 < 0 || n - s2 - 1 < 1 || n - s2 - 1 > 15) return parsePutResult(body);
  let offset = 0;
  for (let i = s2 + 1; i < n; i++) {
    const d = body[i]! - ZERO;
    if (d < 0 || d > 9) return parsePutResult(body);
    offset = offset * 10 + d;
  }
  for (let i = 0; i < s1; i++) {
    const d = body[i]! - ZERO;
    if (d < 0 || d > 9) return parsePutResult(body);
  }
  const id = BigInt(body.toString('latin1', 0, s1));
  return { id, offset };
}
