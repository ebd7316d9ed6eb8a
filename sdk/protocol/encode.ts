/**
 * Encoders for every frame of the MetaQ 1.4 text protocol, byte for byte as MetaQ writes them:
 *
 * ```
 * put <topic> <partition> <len> <flag> <checksum> [<txKey>] <opaque>\r\n<body>   (legacy: no checksum)
 * get <topic> <group> <partition> <offset> <maxSize> <opaque>\r\n
 * offset <topic> <group> <partition> <offset> <opaque>\r\n
 * sync <topic> <partition> <len> <flag> <msgId> <checksum> [<offset>] <opaque>\r\n<body>   (legacy: no checksum)
 * transaction <txKey> <sessionId> <type> [<timeoutSec>] [<uniqueQualifier>] <opaque>\r\n
 * stats <item> <opaque>\r\n   (empty item: `stats  <opaque>`)       version <opaque>\r\n       quit\r\n
 * result <code> <len> <opaque>\r\n<body>                             value <len> <opaque>\r\n<message set>
 * ```
 * Lengths are byte lengths (UTF-8), never character counts. Every string token is checked to be non-empty
 * and free of space, CR and LF, since one of those would silently re-frame the stream; numbers are checked to
 * be int32 (offsets: safe integers; {@link MAX_OFFSET} is written as Java's Long.MAX_VALUE, its wire meaning).
 *
 * @example
 * ```ts
 * encodePut({ topic: 'test', partition: 1, flag: 0, opaque: 0, body: Buffer.from('hello') });
 * // => 'put test 1 5 0 -1 0\r\nhello'
 * ```
 */
import { InvalidArgumentError } from '../errors.js';
import { MAX_OFFSET, NO_CHECKSUM } from './commands.js';
import { NULL_TRANSACTION_KEY } from './transaction-key.js';
import type {
  GetRequest, OffsetRequest, Request, Response, StatsRequest, TransactionType,
} from './commands.js';

const LONG_MAX_TEXT = '9223372036854775807';
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const BAD_TOKEN = /[ \r\n]/;

export interface PutFrame {
  readonly topic: string;
  readonly partition: number;
  readonly flag: number;
  /** Default {@link NO_CHECKSUM} (printed as `-1`). */
  readonly checksum?: number;
  readonly transactionKey?: string | null;
  readonly opaque: number;
  readonly body: Uint8Array;
}

export interface PutEncodeOptions {
  /** Emit the pre-1.4.4 form without the checksum token (what old brokers expect). */
  readonly legacy?: boolean;
}

export interface SyncFrame {
  readonly topic: string;
  readonly partition: number;
  readonly flag: number;
  readonly msgId: bigint;
  /** Default {@link NO_CHECKSUM}. */
  readonly checksum?: number;
  /**
   * The master's byte offset of the record: when given, our 9-token form is written, and the slave stores the record
   * exactly there. Absent or null: MetaQ's 8-token form (the slave appends at its end).
   */
  readonly offset?: number | null;
  readonly opaque: number;
  readonly body: Uint8Array;
}

export interface SyncEncodeOptions {
  /** Emit the pre-1.4.4 form without checksum (7 tokens); an offset cannot be sent then. */
  readonly legacy?: boolean;
}

export type GetFrame = Omit<GetRequest, 'type'>;
export type OffsetFrame = Omit<OffsetRequest, 'type'>;

export interface TransactionFrame {
  /** null (written `null`) only for RECOVER, as MetaQ's client sends it. */
  readonly transactionKey: string | null;
  readonly sessionId: string;
  readonly transactionType: TransactionType;
  readonly timeout?: number | null;
  readonly uniqueQualifier?: string | null;
  readonly opaque: number;
}

/** `put`; the body is the encoded payload (see record.ts `encodePayload`). */
export function encodePut(req: PutFrame, options: PutEncodeOptions = {}): Buffer {
  const checksum = options.legacy === true ? '' : ` ${int32(req.checksum ?? NO_CHECKSUM, 'checksum')}`;
  const tx = req.transactionKey == null ? '' : ` ${token(req.transactionKey, 'transactionKey')}`;
  return frame(`put ${token(req.topic, 'topic')} ${int32(req.partition, 'partition')} ${req.body.byteLength} ` +
    `${int32(req.flag, 'flag')}${checksum}${tx} ${int32(req.opaque, 'opaque')}\r\n`, req.body);
}

export function encodeGet(req: GetFrame): Buffer {
  return frame(`get ${token(req.topic, 'topic')} ${token(req.group, 'group')} ${int32(req.partition, 'partition')} ` +
    `${offset(req.offset)} ${int32(req.maxSize, 'maxSize')} ${int32(req.opaque, 'opaque')}\r\n`);
}

export function encodeOffset(req: OffsetFrame): Buffer {
  return frame(`offset ${token(req.topic, 'topic')} ${token(req.group, 'group')} ` +
    `${int32(req.partition, 'partition')} ${offset(req.offset)} ${int32(req.opaque, 'opaque')}\r\n`);
}

/**
 * `sync` (master to slave): with `offset`, our 9-token form; without, MetaQ 1.4.4's 8-token form (checksum);
 * `{ legacy: true }`: the 7-token form of older MetaQ.
 */
export function encodeSync(req: SyncFrame, options: SyncEncodeOptions = {}): Buffer {
  if (req.msgId < INT64_MIN || req.msgId > INT64_MAX) throw new InvalidArgumentError(`msgId ${req.msgId} is not an int64`);
  const at = req.offset ?? null;
  if (at !== null && (!Number.isSafeInteger(at) || at < 0 || at >= MAX_OFFSET)) {
    throw new InvalidArgumentError(`sync offset ${at} is not a non-negative safe integer`);
  }
  let extra = '';
  if (options.legacy === true) {
    if (at !== null) throw new InvalidArgumentError('the legacy sync form cannot carry an offset');
  } else {
    extra = ` ${int32(req.checksum ?? NO_CHECKSUM, 'checksum')}${at === null ? '' : ` ${at}`}`;
  }
  return frame(`sync ${token(req.topic, 'topic')} ${int32(req.partition, 'partition')} ${req.body.byteLength} ` +
    `${int32(req.flag, 'flag')} ${req.msgId}${extra} ${int32(req.opaque, 'opaque')}\r\n`, req.body);
}

/**
 * `transaction`. A unique qualifier made only of digits, sent without a timeout, would be read back as a
 * timeout (MetaQ's 6-token rule); it is then sent with an explicit timeout `0`, which MetaQ reads as "none".
 */
export function encodeTransaction(req: TransactionFrame): Buffer {
  let extra = '';
  const timeout = req.timeout ?? null;
  const qualifier = req.uniqueQualifier ?? null;
  if (timeout !== null) extra += ` ${int32(timeout, 'timeout')}`;
  if (qualifier !== null) {
    if (timeout === null && /^\d+$/.test(qualifier)) extra += ' 0';
    extra += ` ${token(qualifier, 'uniqueQualifier')}`;
  }
  return frame(`transaction ${token(req.transactionKey ?? NULL_TRANSACTION_KEY, 'transactionKey')} ${token(req.sessionId, 'sessionId')} ` +
    `${token(req.transactionType, 'transactionType')}${extra} ${int32(req.opaque, 'opaque')}\r\n`);
}

/** `stats`; the empty item (broker summary) is written as two spaces, as MetaQ does. */
export function encodeStats(req: Omit<StatsRequest, 'type'>): Buffer {
  const item = req.item.trim() === '' ? '' : token(req.item, 'item');
  return frame(`stats ${item} ${int32(req.opaque, 'opaque')}\r\n`);
}

export function encodeVersion(opaque: number): Buffer {
  return frame(`version ${int32(opaque, 'opaque')}\r\n`);
}

export function encodeQuit(): Buffer {
  return Buffer.from('quit\r\n', 'latin1');
}

/** `result`; a string body is written as UTF-8 and its byte length announced. */
export function encodeResult(code: number, body: Buffer | string, opaque: number): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return frame(`result ${int32(code, 'code')} ${bytes.length} ${int32(opaque, 'opaque')}\r\n`, bytes);
}

/** The `value` header alone: the broker writes the log slice of `length` bytes right after it. */
export function encodeValueHeader(length: number, opaque: number): Buffer {
  if (!Number.isInteger(length) || length < 0 || length > 0x7fffffff) {
    throw new InvalidArgumentError(`value length ${length} is not a non-negative int32`);
  }
  return Buffer.from(`value ${length} ${int32(opaque, 'opaque')}\r\n`, 'latin1');
}

export function encodeValue(body: Uint8Array, opaque: number): Buffer {
  return frame(`value ${body.byteLength} ${int32(opaque, 'opaque')}\r\n`, body);
}

/** Any request. */
export function encodeRequest(req: Request): Buffer {
  switch (req.type) {
    case 'put': return encodePut(req);
    case 'get': return encodeGet(req);
    case 'offset': return encodeOffset(req);
    case 'sync': return encodeSync(req);
    case 'transaction': return encodeTransaction(req);
    case 'stats': return encodeStats(req);
    case 'version': return encodeVersion(req.opaque);
    case 'quit': return encodeQuit();
  }
}

/** Any response. */
export function encodeResponse(res: Response): Buffer {
  return res.type === 'result' ? encodeResult(res.code, res.body, res.opaque) : encodeValue(res.body, res.opaque);
}

function frame(header: string, body?: Uint8Array): Buffer {
  const headerLen = Buffer.byteLength(header, 'utf8');
  const bodyLen = body === undefined ? 0 : body.byteLength;
  const out = Buffer.allocUnsafe(headerLen + bodyLen);
  out.write(header, 0, 'utf8');
  if (body !== undefined) out.set(body, headerLen);
  return out;
}

function token(v: string, what: string): string {
  if (v === '' || BAD_TOKEN.test(v)) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(v)} is empty or contains a space, CR or LF`);
  }
  return v;
}

function int32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
    throw new InvalidArgumentError(`${what} ${v} is not an int32`);
  }
  return v;
}

function offset(v: number): string {
  if (v === MAX_OFFSET) return LONG_MAX_TEXT;
  if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`offset ${v} is not a safe integer`);
  return String(v);
}
