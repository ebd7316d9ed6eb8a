/**
 * Decodes the requests a broker receives, incrementally (bytes may arrive one at a time).
 *
 * ```
 * put <topic> <partition> <len> <flag> [<checksum>] [<txKey>] <opaque>\r\n<len bytes>     6, 7 or 8 tokens
 * get <topic> <group> <partition> <offset> <maxSize> <opaque>\r\n                        7 tokens
 * offset <topic> <group> <partition> <offset> <opaque>\r\n                               6 tokens
 * sync <topic> <partition> <len> <flag> <msgId> [<checksum> [<offset>]] <opaque>\r\n<len bytes>   7, 8 or 9 tokens
 * transaction <txKey> <sessionId> <type> [<timeoutSec>] [<uniqueQualifier>] <opaque>\r\n 5, 6 or 7 tokens
 * stats [<item> [<opaque>]]\r\n        version [<opaque>]\r\n        quit\r\n
 * ```
 * Dispatch is on the first byte (p g t s o v q, as MetaQ); the whole command word must then match. A `put`
 * with 7 tokens has a checksum when token 5 starts with a digit or `-`, else a transaction key; a
 * `transaction` with 6 tokens has a timeout when token 4 is all digits, else a unique qualifier. A `sync` with 9
 * tokens is ours: it carries the master's byte offset of the record (a non-negative safe integer). Missing
 * `opaque` of `stats`/`version` is {@link DEFAULT_OPAQUE}. Offsets beyond 2^53 decode as {@link MAX_OFFSET}.
 *
 * A `put`/`sync` announcing more than `maxBodyBytes` is a well-framed bad request: its body is discarded as it
 * arrives and an {@link OversizedRequest} is returned after it, so the connection stays usable.
 *
 * @example
 * ```ts
 * const decoder = new RequestDecoder();
 * socket.on('data', (chunk) => {
 *   decoder.push(chunk);
 *   for (let req = decoder.next(); req !== undefined; req = decoder.next()) handle(req);
 * });
 * ```
 * @see ResponseDecoder
 */
import { DEFAULT_OPAQUE, MAX_OFFSET, NO_CHECKSUM, TransactionTypes } from './commands.js';
import type { DecodedRequest, TransactionType } from './commands.js';
import { FrameDecoder } from './frame-decoder.js';
import type { DecoderOptions } from './frame-decoder.js';
import { NULL_TRANSACTION_KEY, transactionKeyProblem } from './transaction-key.js';

export type { DecoderOptions } from './frame-decoder.js';

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');
const PUT = ascii('put');
const GET = ascii('get');
const OFFSET = ascii('offset');
const SYNC = ascii('sync');
const STATS = ascii('stats');
const TRANSACTION = ascii('transaction');
const VERSION = ascii('version');
const VALUE = ascii('value');
const QUIT = ascii('quit');
const RESULT = ascii('result');

const TX_TYPES = new Set<string>(Object.values(TransactionTypes));
const TOPIC_CACHE_MAX = 64;
const TOPIC_SLOTS = 16;

export class RequestDecoder extends FrameDecoder<DecodedRequest> {
  // Header fields of a put/sync whose body is being read.
  private pTopic = '';
  private pPartition = 0;
  private pFlag = 0;
  private pChecksum = 0;
  private pTxKey: string | null = null;
  private pMsgId = 0n;
  private pOffset: number | null = null;
  private pOpaque = 0;
  // Recently seen topics (direct-mapped by a cheap hash): pipelined puts repeat a few topics, and comparing
  // a few bytes is much cheaper than decoding a new string per frame.
  private readonly topicBytes = Buffer.alloc(TOPIC_SLOTS * TOPIC_CACHE_MAX);
  private readonly topicLens = new Int32Array(TOPIC_SLOTS).fill(-1);
  private readonly topicStrings: string[] = new Array<string>(TOPIC_SLOTS).fill('');

  constructor(opts?: DecoderOptions) {
    super(opts);
  }

  protected decodeLine(buf: Buffer, start: number, end: number): DecodedRequest | null {
    const t = this.tokens;
    if (!t.split(buf, start, end)) this.fail('too many tokens');
    if (t.length(0) === 0) this.fail('Blank command line');
    switch (buf[t.start(0)]) {
      case 0x70: return this.put();                                             // p
      case 0x67: this.expect(GET, 'get'); return this.get();                   // g
      case 0x6f: this.expect(OFFSET, 'offset'); return this.offset();          // o
      case 0x74: this.expect(TRANSACTION, 'transaction'); return this.transaction(); // t
      case 0x73:                                                                 // s
        if (t.equals(0, STATS)) { this.command = 'stats'; return this.stats(); }
        return this.sync();
      case 0x76:                                                                 // v
        if (t.equals(0, VALUE)) this.fail('Unexpected response frame "value" on a request stream');
        this.expect(VERSION, 'version');
        return this.version();
      case 0x71: this.expect(QUIT, 'quit'); return this.quit();                // q
      case 0x72:                                                                 // r
        if (t.equals(0, RESULT)) this.fail('Unexpected response frame "result" on a request stream');
        return this.fail('Unknown command');
      default: return this.fail('Unknown command');
    }
  }

  protected complete(body: Buffer | null): DecodedRequest {
    if (body === null) {
      return {
        type: 'oversized', command: this.command === 'sync' ? 'sync' : 'put', topic: this.pTopic,
        partition: this.pPartition, length: this.bodyLength, opaque: this.pOpaque,
      };
    }
    if (this.command === 'sync') {
      return {
        type: 'sync', topic: this.pTopic, partition: this.pPartition, flag: this.pFlag, msgId: this.pMsgId,
        checksum: this.pChecksum, offset: this.pOffset, opaque: this.pOpaque, body,
      };
    }
    return {
      type: 'put', topic: this.pTopic, partition: this.pPartition, flag: this.pFlag, checksum: this.pChecksum,
      transactionKey: this.pTxKey, opaque: this.pOpaque, body,
    };
  }

  private put(): null {
    this.expect(PUT, 'put');
    const t = this.tokens;
    const n = t.count;
    if (n < 6) this.fail(`Invalid put command: expected 6 to 8 tokens, got ${n}`);
    if (n > 8) this.fail(`Invalid put command: too many tokens: expected 6 to 8, got ${n}`);
    this.pTopic = this.topic();
    this.pPartition = this.int32(2, 'partition');
    this.bodyLength = this.length(3);
    this.pFlag = this.int32(4, 'flag');
    this.pChecksum = NO_CHECKSUM;
    this.pTxKey = null;
    if (n === 7) {
      if (t.length(5) === 0) this.fail('empty checksum or transaction key');
      const c = t.buf[t.start(5)]!;
      if ((c >= 0x30 && c <= 0x39) || c === 0x2d) this.pChecksum = this.int32(5, 'checksum');
      else this.pTxKey = this.txKey(5);
    } else if (n === 8) {
      this.pChecksum = this.int32(5, 'checksum');
      this.pTxKey = this.txKey(6);
    }
    this.pOpaque = this.int32(n - 1, 'opaque');
    return null;
  }

  private sync(): null {
    this.expect(SYNC, 'sync');
    const n = this.tokens.count;
    if (n < 7 || n > 9) this.fail(`Invalid sync command: expected 7, 8 or 9 tokens, got ${n}`);
    this.pTopic = this.topic();
    this.pPartition = this.int32(2, 'partition');
    this.bodyLength = this.length(3);
    this.pFlag = this.int32(4, 'flag');
    if (Number.isNaN(this.tokens.int64(5))) this.fail('bad number in msgId');
    this.pMsgId = BigInt(this.tokens.buf.toString('latin1', this.tokens.start(5), this.tokens.end(5)));
    this.pChecksum = n >= 8 ? this.int32(6, 'checksum') : NO_CHECKSUM;
    this.pOffset = n === 9 ? this.logOffset(7) : null;
    this.pOpaque = this.int32(n - 1, 'opaque');
    return null;
  }

  private get(): DecodedRequest {
    this.count(7, 7);
    return {
      type: 'get', topic: this.topic(), group: this.tokens.text(2), partition: this.int32(3, 'partition'),
      offset: this.int64(4, 'offset'), maxSize: this.int32(5, 'maxSize'), opaque: this.int32(6, 'opaque'),
    };
  }

  private offset(): DecodedRequest {
    this.count(6, 6);
    return {
      type: 'offset', topic: this.topic(), group: this.tokens.text(2), partition: this.int32(3, 'partition'),
      offset: this.int64(4, 'offset'), opaque: this.int32(5, 'opaque'),
    };
  }

  private transaction(): DecodedRequest {
    const t = this.tokens;
    const n = this.count(5, 7);
    const transactionKey = this.txKey(1);
    const type = t.text(3);
    if (!TX_TYPES.has(type)) this.fail(`unknown transaction type ${JSON.stringify(type)}`);
    // MetaQ's TransactionContext.recover sends no transaction (the key `null`); every other type needs one.
    if (transactionKey === null && type !== 'RECOVER') this.fail('transaction frame without a transaction key');
    let timeout: number | null = null;
    let uniqueQualifier: string | null = null;
    if (n === 7) {
      timeout = this.int32(4, 'timeout');
      uniqueQualifier = t.text(5);
    } else if (n === 6) {
      if (t.isNumeric(4)) timeout = this.int32(4, 'timeout');
      else uniqueQualifier = t.text(4);
    }
    return {
      type: 'transaction', transactionKey, sessionId: t.text(2), transactionType: type as TransactionType,
      timeout, uniqueQualifier, opaque: this.int32(n - 1, 'opaque'),
    };
  }

  private stats(): DecodedRequest {
    const n = this.count(1, 3);
    return {
      type: 'stats', item: n >= 2 ? this.tokens.text(1) : '',
      opaque: n === 3 ? this.int32(2, 'opaque') : DEFAULT_OPAQUE,
    };
  }

  private version(): DecodedRequest {
    const n = this.count(1, 2);
    return { type: 'version', opaque: n === 2 ? this.int32(1, 'opaque') : DEFAULT_OPAQUE };
  }

  private quit(): DecodedRequest {
    this.count(1, 1);
    return { type: 'quit' };
  }

  private expect(word: Buffer, name: string): void {
    this.command = name;
    if (!this.tokens.equals(0, word)) this.fail(`Expect ${name}, but was ${JSON.stringify(this.tokens.text(0))}`);
  }

  private count(min: number, max: number): number {
    const n = this.tokens.count;
    if (n < min) this.fail(`too few tokens: expected ${min === max ? min : `${min} to ${max}`}, got ${n}`);
    if (n > max) this.fail(`too many tokens: expected ${min === max ? max : `${min} to ${max}`}, got ${n}`);
    return n;
  }

  private int32(i: number, what: string): number {
    const v = this.tokens.int32(i);
    if (Number.isNaN(v)) this.fail(`bad number in ${what}: not an int32`);
    return v;
  }

  private int64(i: number, what: string): number {
    const v = this.tokens.int64(i);
    if (Number.isNaN(v)) this.fail(`bad number in ${what}: not an int64`);
    return v;
  }

  /** A byte offset that must be exact: int64, >= 0 and below 2^53 - 1 (parseInt64 clamps larger values to it). */
  private logOffset(i: number): number {
    const v = this.int64(i, 'offset');
    if (v < 0 || v >= MAX_OFFSET) this.fail(`bad number in offset: ${this.tokens.text(i)} is not a non-negative safe integer`);
    return v;
  }

  private length(i: number): number {
    const v = this.int32(i, 'length');
    if (v < 0) this.fail(`negative length ${v}`);
    return v;
  }

  private txKey(i: number): string | null {
    const key = this.tokens.text(i);
    if (key === NULL_TRANSACTION_KEY) return null;
    const problem = transactionKeyProblem(key);
    if (problem !== null) this.fail(problem);
    return key;
  }

  /** Token 1 as a string, reusing a cached string when the same bytes were seen recently. */
  private topic(): string {
    const t = this.tokens;
    const buf = t.buf;
    const s = t.start(1);
    const len = t.length(1);
    if (len > TOPIC_CACHE_MAX) return t.text(1);
    const slot = len === 0 ? 0 : (len * 7 + buf[s]! * 3 + buf[s + len - 1]! + buf[s + (len >> 1)]!) & (TOPIC_SLOTS - 1);
    const base = slot * TOPIC_CACHE_MAX;
    if (this.topicLens[slot] === len) {
      const cached = this.topicBytes;
      let k = 0;
      while (k < len && buf[s + k] === cached[base + k]) k++;
      if (k === len) return this.topicStrings[slot]!;
    }
    const topic = t.text(1);
    buf.copy(this.topicBytes, base, s, s + len);
    this.topicLens[slot] = len;
    this.topicStrings[slot] = topic;
    return topic;
  }
}

