/**
 * Transaction keys as they travel in `put` and `transaction` frames (MetaQ's TransactionId.valueOf):
 *
 * ```
 * TX:<sessionId>:<n>                                          local transaction; n is an int32
 * XID:<formatId>:<hex gtrid>:<hex bqual>:<uniqueQualifier>    XA branch; formatId int32, hex lowercase on output
 * null                                                        no transaction
 * ```
 * Keys are split on `:`, so neither the session id nor the unique qualifier may contain `:` (MetaQ breaks
 * on an IPv6 host in a session id; we refuse such keys instead). A key is one protocol token: no space, CR, LF.
 */
import { InvalidArgumentError } from '../errors.js';

export interface LocalTransactionKey {
  readonly kind: 'local';
  readonly sessionId: string;
  readonly counter: number;
}

export interface XaTransactionKey {
  readonly kind: 'xa';
  readonly formatId: number;
  readonly globalTransactionId: Buffer;
  readonly branchQualifier: Buffer;
  readonly uniqueQualifier: string;
}

export type TransactionKey = LocalTransactionKey | XaTransactionKey;

/** The key text meaning "no transaction". */
export const NULL_TRANSACTION_KEY = 'null';

const INT32_TEXT = /^[-+]?\d{1,10}$/;
const HEX_TEXT = /^(?:[0-9a-fA-F]{2})*$/;
const FORBIDDEN = /[:\s]/;

/**
 * Parses a transaction key; `'null'` gives null. Throws InvalidArgumentError naming what is wrong.
 *
 * @example
 * ```ts
 * parseTransactionKey('TX:host-1700000000000-1:7');   // { kind: 'local', sessionId: 'host-1700000000000-1', counter: 7 }
 * ```
 */
export function parseTransactionKey(key: string): TransactionKey | null {
  if (key === NULL_TRANSACTION_KEY) return null;
  if (/[\s]/.test(key)) throw bad(key, 'it contains whitespace');
  const parts = key.split(':');
  if (parts[0] === 'TX') {
    if (parts.length !== 3) throw bad(key, `a local key has 3 ':'-separated parts, found ${parts.length}`);
    const sessionId = parts[1]!;
    if (sessionId === '') throw bad(key, 'the session id is empty');
    return { kind: 'local', sessionId, counter: parseInt32(key, parts[2]!, 'counter') };
  }
  if (parts[0] === 'XID') {
    if (parts.length !== 5) throw bad(key, `an XA key has 5 ':'-separated parts, found ${parts.length}`);
    const uniqueQualifier = parts[4]!;
    if (uniqueQualifier === '') throw bad(key, 'the unique qualifier is empty');
    return {
      kind: 'xa',
      formatId: parseInt32(key, parts[1]!, 'formatId'),
      globalTransactionId: parseHex(key, parts[2]!, 'global transaction id'),
      branchQualifier: parseHex(key, parts[3]!, 'branch qualifier'),
      uniqueQualifier,
    };
  }
  throw bad(key, "it starts with neither 'TX:' nor 'XID:'");
}

/** Formats a key (null gives `'null'`). Throws InvalidArgumentError when a part could not be parsed back. */
export function formatTransactionKey(key: TransactionKey | null): string {
  if (key === null) return NULL_TRANSACTION_KEY;
  if (key.kind === 'local') {
    checkPart(key.sessionId, 'session id');
    checkInt32(key.counter, 'counter');
    return `TX:${key.sessionId}:${key.counter}`;
  }
  checkPart(key.uniqueQualifier, 'unique qualifier');
  checkInt32(key.formatId, 'formatId');
  return `XID:${key.formatId}:${key.globalTransactionId.toString('hex')}:${key.branchQualifier.toString('hex')}:` +
    key.uniqueQualifier;
}

/** Null when `key` is a valid transaction key (or `'null'`), otherwise why not. */
export function transactionKeyProblem(key: string): string | null {
  try {
    parseTransactionKey(key);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function parseInt32(key: string, text: string, what: string): number {
  const v = INT32_TEXT.test(text) ? Number(text) : NaN;
  if (!(v >= -2147483648 && v <= 2147483647)) throw bad(key, `the ${what} ${JSON.stringify(text)} is not an int32`);
  return v;
}

function parseHex(key: string, text: string, what: string): Buffer {
  if (!HEX_TEXT.test(text)) throw bad(key, `the ${what} ${JSON.stringify(text)} is not an even-length hex string`);
  return Buffer.from(text, 'hex');
}

function checkPart(v: string, what: string): void {
  if (v === '' || FORBIDDEN.test(v)) {
    throw new InvalidArgumentError(`Illegal transaction key part: the ${what} ${JSON.stringify(v)} is empty or ` +
      "contains ':' or whitespace");
  }
}

function checkInt32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
    throw new InvalidArgumentError(`Illegal transaction key part: the ${what} ${v} is not an int32`);
  }
}

function bad(key: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`Illegal transaction key ${JSON.stringify(key)}: ${why}`);
}
