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

/** Parses a put/sync result body. Throws ProtocolError (state `put-result`) when it is malformed. */
export function parsePutResult(body: string | Buffer): PutResult {
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

/** Formats a put/sync result body. Throws InvalidArgumentError on out-of-range fields. */
export function formatPutResult(result: PutResult): string {
  const { partition, offset } = result;
  if (!Number.isInteger(partition) || partition < -2147483648 || partition > 2147483647) {
    throw new InvalidArgumentError(`partition ${partition} is not an int32`);
  }
  if (!Number.isSafeInteger(offset) || offset < -1) throw new InvalidArgumentError(`offset ${offset} is invalid`);
  return `${formatMessageId(result.id)} ${partition} ${offset}`;
}
