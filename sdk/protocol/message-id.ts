/**
 * Message ids and the body of a successful `put`/`sync` result.
 *
 * Ids are int64 (snowflake-like, assigned by the broker) and travel as decimal text; they are carried as
 * `bigint`, never as a lossy `number`. The put result body is `"<msgId> <partition> <offset>"`, where offset is
 * the byte position of the stored record, or `-1` inside a transaction (the message is only journalled).
 *
 * @example
 * ```ts
 * parsePutResult('7038352640897024 3 1024'); // { id: 7038352640897024n, partition: 3, offset: 1024 }
 * ```
 */
import { InvalidArgumentError, ProtocolError } from '../errors.js';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const ID_TEXT = /^-?\d{1,19}$/;
const PUT_RESULT = /^(-?\d{1,19}) (-?\d{1,10}) (-?\d{1,16})$/;

export interface PutResult {
  readonly id: bigint;
  readonly partition: number;
  /** Byte offset of the stored record; -1 for a put inside a transaction. */
  readonly offset: number;
}

/** Decimal text of a message id. Throws InvalidArgumentError outside int64. */
export function formatMessageId(id: bigint): string {
  if (id < INT64_MIN || id > INT64_MAX) throw new InvalidArgumentError(`message id ${id} is not an int64`);
  return id.toString();
}

/** Parses decimal message-id text (an int64; negative in theory). Throws InvalidArgumentError on anything else. */
export function parseMessageId(text: string): bigint {
  const id = ID_TEXT.test(text) ? BigInt(text) : null;
  if (id === null || id < INT64_MIN || id > INT64_MAX) {
    throw new InvalidArgumentError(`invalid message id ${JSON.stringify(text)}: expected a decimal int64`);
  }
  return id;
}

/**
 * Parses a put/sync result body. Throws ProtocolError (state `put-result`) when it is malformed. A producer reads
 * one per message, so a Buffer of the plain shape (non-negative numbers) is scanned in place, without a string
 * and a regular expression; anything else takes the checked path, which also explains what is wrong.
 */
export function parsePutResult(body: string | Buffer): PutResult {
  if (typeof body !== 'string') {
    const fast = parsePlainPutResult(body);
    if (fast !== undefined) return fast;
  }
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const m = PUT_RESULT.exec(text);
  const id = m === null ? null : BigInt(m[1]!);
  const partition = m === null ? NaN : Number(m[2]);
  const offset = m === null ? NaN : Number(m[3]);
  if (id === null || id < INT64_MIN || id > INT64_MAX || !(partition >= -2147483648 && partition <= 2147483647) ||
      !Number.isSafeInteger(offset) || offset < -1) {
    throw new ProtocolError('malformed put result: expected "<msgId> <partition> <offset>"', 'put-result',
      text.slice(0, 64));
  }
  return { id, partition, offset };
}

const SPACE = 0x20;
const ZERO = 0x30;

/** Decimal digits of `b[start, end)` as a number, or -1 when one is not a digit. */
function digitsAt(b: Buffer, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = b[i]! - ZERO;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** `"<id> <partition> <offset>"` of non-negative numbers within range, or undefined for anything else. */
function parsePlainPutResult(b: Buffer): PutResult | undefined {
  const s1 = b.indexOf(SPACE);
  const s2 = s1 < 0 ? -1 : b.indexOf(SPACE, s1 + 1);
  // At most 19 id digits, 9 partition digits (always an int32), 15 offset digits (always a safe integer).
  if (s1 <= 0 || s1 > 19 || s2 - s1 - 1 < 1 || s2 - s1 - 1 > 9 || b.length - s2 - 1 < 1 || b.length - s2 - 1 > 15) {
    return undefined;
  }
  const partition = digitsAt(b, s1 + 1, s2);
  const offset = digitsAt(b, s2 + 1, b.length);
  // The id's digits are only checked here (a value above 2^53 is inexact, but never negative).
  if (partition < 0 || offset < 0 || digitsAt(b, 0, s1) < 0) return undefined;
  const id = BigInt(b.toString('latin1', 0, s1));
  return id > INT64_MAX ? undefined : { id, partition, offset };
}

/** Formats a put/sync result body. Throws InvalidArgumentError on out-of-range fields. */
export function formatPutResult(result: PutResult): string {
  const { partition, offset } = result;
  if (!Number.isInteger(partition) || partition < -2147483648 || partition > 2147483647) {
    throw new InvalidArgumentError(`partition ${partition} is not an int32`);
  }
  if (!Number.isSafeInteger(offset) || offset < -1) throw new InvalidArgumentError(`offset ${offset} is invalid`);
  return `${formatMessageId(result.id)} ${partition} ${offset}`;
}
