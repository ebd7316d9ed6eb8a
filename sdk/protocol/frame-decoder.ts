/**
 * The incremental byte state machine shared by {@link RequestDecoder} and {@link ResponseDecoder}: a header line
 * ended by CRLF, then optionally exactly `len` raw body bytes.
 *
 * ```
 * HEADER --CRLF--> (subclass parses the tokens) --no body--> frame
 *                                              --len <= maxBodyBytes--> BODY --len bytes--> frame
 *                                              --len >  maxBodyBytes--> SKIP --len bytes discarded--> frame
 * any error --> FAILED (until reset())
 * ```
 *
 * Memory: a header line split across chunks is copied into one buffer of `maxLineBytes` bytes; a body
 * split across chunks is copied into a buffer of exactly `len` bytes, allocated only after `len` was checked
 * against `maxBodyBytes`. A body lying whole in one pushed chunk is returned as a view of that chunk (no copy),
 * which keeps the chunk alive as long as the body is referenced. Once `next()` has returned `undefined`, the
 * decoder holds no pushed chunk at all.
 */
import { ErrorCodes, InvalidArgumentError, ProtocolError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { LineTokens, snippet } from './line-tokens.js';

export interface DecoderOptions {
  /** Longest header line, excluding CRLF. Default 4096. */
  maxLineBytes?: number;
  /** Largest body buffered. Default 2 MiB. */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 4096;
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);

const State = { HEADER: 0, BODY: 1, SKIP: 2, FAILED: 3 } as const;
type State = (typeof State)[keyof typeof State];
const STATE_NAMES = ['header', 'body', 'skip-body', 'failed'] as const;

export abstract class FrameDecoder<T extends object> {
  protected readonly maxLineBytes: number;
  protected readonly maxBodyBytes: number;
  protected readonly tokens = new LineTokens();
  /** Set by {@link decodeLine} when it returns null: the body length that follows the line. */
  protected bodyLength = 0;
  /** The command being parsed, for error messages. */
  protected command = '';

  private chunk: Buffer | null = null;
  private pos = 0;
  private readonly queue: Buffer[] = [];
  private readonly line: Buffer;
  private lineLen = 0;
  /** The partial line is exactly maxLineBytes long and was followed by a CR: only an LF may come next. */
  private lineCr = false;
  private state: State = State.HEADER;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private skipLeft = 0;
  private failure: ProtocolError | null = null;

  constructor(opts: DecoderOptions = {}) {
    this.maxLineBytes = checkLimit('maxLineBytes', opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    this.maxBodyBytes = checkLimit('maxBodyBytes', opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    this.line = Buffer.allocUnsafe(this.maxLineBytes);
  }

  /**
   * Parses the header line `buf[start, end)` (CRLF excluded). Returns the frame when it has no body; returns
   * null after setting {@link bodyLength} when `bodyLength` body bytes follow. Throws ProtocolError.
   */
  protected abstract decodeLine(buf: Buffer, start: number, end: number): T | null;

  /** Builds the frame announced by the last {@link decodeLine} once its body is here; null = body skipped. */
  protected abstract complete(body: Buffer | null): T;

  /** Appends received bytes. The decoder keeps a reference to `chunk`: do not reuse its memory. */
  push(chunk: Buffer): void {
    if (this.state === State.FAILED) throw this.failure!;
    if (chunk.length === 0) return;
    if (this.chunk === null) { this.chunk = chunk; this.pos = 0; } else this.queue.push(chunk);
  }

  /** The next whole frame, or undefined when more bytes are needed. Throws ProtocolError on malformed input. */
  next(): T | undefined {
    if (this.state === State.FAILED) throw this.failure!;
    try {
      return this.step();
    } catch (e) {
      this.state = State.FAILED;
      this.chunk = null;
      this.queue.length = 0;
      this.body = null;
      this.lineLen = 0;
      this.lineCr = false;
      if (e instanceof ProtocolError) this.failure = e;
      else this.failure = new ProtocolError(`internal decoder error: ${String(e)}`, 'failed', '');
      throw this.failure;
    }
  }

  /** Forgets all state and input, including a failure. */
  reset(): void {
    this.chunk = null;
    this.pos = 0;
    this.queue.length = 0;
    this.lineLen = 0;
    this.lineCr = false;
    this.state = State.HEADER;
    this.body = null;
    this.bodyFilled = 0;
    this.skipLeft = 0;
    this.failure = null;
    this.command = '';
  }

  /** Bytes held: a partial header line, an allocated partial body, and pushed input not yet parsed. */
  get bufferedBytes(): number {
    let n = this.lineLen + (this.body === null ? 0 : this.body.length);
    if (this.chunk !== null) n += this.chunk.length - this.pos;
    for (const q of this.queue) n += q.length;
    return n;
  }

  /** Throws a ProtocolError naming the current state and showing the current line. */
  protected fail(message: string, code: ErrorCode = ErrorCodes.PROTOCOL): never {
    const t = this.tokens;
    const state = this.state === State.HEADER && this.command !== '' ? this.command : STATE_NAMES[this.state];
    throw new ProtocolError(message, state, snippet(t.buf, t.lineStart, t.lineEnd), code);
  }

  private step(): T | undefined {
    for (;;) {
      const c = this.chunk;
      if (c === null) return undefined;
      if (this.pos >= c.length) { this.advance(); continue; }
      if (this.state === State.HEADER) {
        const frame = this.readHeader(c);
        if (frame !== undefined) return frame;
      } else if (this.state === State.BODY) {
        const body = this.body!;
        const n = Math.min(body.length - this.bodyFilled, c.length - this.pos);
        c.copy(body, this.bodyFilled, this.pos, this.pos + n);
        this.bodyFilled += n;
        this.pos += n;
        if (this.bodyFilled === body.length) {
          this.body = null;
          this.state = State.HEADER;
          return this.complete(body);
        }
      } else {
        const n = Math.min(this.skipLeft, c.length - this.pos);
        this.skipLeft -= n;
        this.pos += n;
        if (this.skipLeft === 0) {
          this.state = State.HEADER;
          return this.complete(null);
        }
      }
    }
  }

  /** Consumes header bytes of `c`; returns a frame, or undefined to go on (more bytes or a body to read). */
  private readHeader(c: Buffer): T | undefined {
    const max = this.maxLineBytes;
    if (this.lineLen === 0) {
      const start = this.pos;
      const eol = findCrlf(c, start);
      if (eol >= 0) {
        this.pos = eol + 2;
        if (eol - start > max) this.lineTooLong(c, start, eol);
        return this.onLine(c, start, eol);
      }
      this.keepPartialLine(c, start);
      return undefined;
    }
    // A line continued from earlier chunks; its CRLF may straddle the boundary.
    const line = this.line;
    if (this.lineCr) {
      if (c[this.pos] !== LF) this.lineTooLong(line, 0, this.lineLen);
      const end = this.lineLen;
      this.pos += 1;
      this.lineLen = 0;
      this.lineCr = false;
      return this.onLine(line, 0, end);
    }
    if (line[this.lineLen - 1] === CR && c[this.pos] === LF) {
      const end = this.lineLen - 1;
      this.pos += 1;
      this.lineLen = 0;
      return this.onLine(line, 0, end);
    }
    const eol = findCrlf(c, this.pos);
    if (eol < 0) { this.keepPartialLine(c, this.pos); return undefined; }
    const total = this.lineLen + eol - this.pos;
    if (total > max) this.lineTooLong(line, 0, this.lineLen);
    c.copy(line, this.lineLen, this.pos, eol);
    this.pos = eol + 2;
    this.lineLen = 0;
    return this.onLine(line, 0, total);
  }

  private keepPartialLine(c: Buffer, from: number): void {
    const n = this.lineLen + c.length - from;
    const max = this.maxLineBytes;
    if (n > max + 1 || (n === max + 1 && c[c.length - 1] !== CR)) {
      if (this.lineLen > 0) this.lineTooLong(this.line, 0, this.lineLen);
      this.lineTooLong(c, from, c.length);
    }
    if (n === max + 1) {
      // Keep the CR as a flag, so the line buffer never exceeds maxLineBytes.
      c.copy(this.line, this.lineLen, from, c.length - 1);
      this.lineLen = max;
      this.lineCr = true;
    } else {
      c.copy(this.line, this.lineLen, from);
      this.lineLen = n;
    }
    this.advance();
  }

  private lineTooLong(buf: Buffer, s: number, e: number): never {
    this.command = '';
    this.tokens.buf = buf;
    this.tokens.lineStart = s;
    this.tokens.lineEnd = e;
    this.fail(`header line longer than ${this.maxLineBytes} bytes without CRLF`, ErrorCodes.FRAME_TOO_LARGE);
  }

  private onLine(buf: Buffer, start: number, end: number): T | undefined {
    this.command = '';
    const frame = this.decodeLine(buf, start, end);
    if (frame !== null) return frame;
    const len = this.bodyLength;
    if (len > this.maxBodyBytes) {
      this.skipLeft = len;
      this.state = State.SKIP;
      return undefined;
    }
    if (len === 0) return this.complete(EMPTY);
    const c = this.chunk!;
    const avail = c.length - this.pos;
    if (len <= avail) {
      const body = c.subarray(this.pos, this.pos + len);
      this.pos += len;
      return this.complete(body);
    }
    const body = Buffer.allocUnsafe(len);
    c.copy(body, 0, this.pos);
    this.body = body;
    this.bodyFilled = avail;
    this.state = State.BODY;
    this.advance();
    return undefined;
  }

  private advance(): void {
    this.chunk = this.queue.shift() ?? null;
    this.pos = 0;
  }
}

/** Index of the CR of the first CRLF at or after `from`, or -1. A lone LF or CR is part of the line. */
function findCrlf(c: Buffer, from: number): number {
  let i = c.indexOf(LF, from);
  while (i >= 0) {
    if (i > from && c[i - 1] === CR) return i - 1;
    i = c.indexOf(LF, i + 1);
  }
  return -1;
}

function checkLimit(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${v}`);
  return v;
}
