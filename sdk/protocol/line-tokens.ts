/**
 * Reading one header line in place: token boundaries and decimal numbers straight from the bytes, so the hot
 * path (pipelined `put`s) creates no strings except the topic, and that one is cached.
 *
 * Tokens are separated by single spaces exactly as Java's `Pattern.compile(" ").split(line)`: a doubled space
 * yields an empty token (`stats  7` has item `''`), and trailing empty tokens are dropped (`version \r\n` is
 * `version` alone).
 */

/** Most tokens any frame has (our `sync` carrying the master's offset: 9). */
export const MAX_TOKENS = 9;

const SPACE = 0x20;
const MINUS = 0x2d;
const PLUS = 0x2b;
const ZERO = 0x30;
const NINE = 0x39;

/** Digits of Long.MAX_VALUE and of -Long.MIN_VALUE, to range-check 19-digit values without precision loss. */
const INT64_MAX_DIGITS = Buffer.from('9223372036854775807', 'latin1');
const INT64_MIN_DIGITS = Buffer.from('9223372036854775808', 'latin1');

/** Token boundaries of the current line; reused across lines (no per-line allocation). */
export class LineTokens {
  readonly starts = new Int32Array(MAX_TOKENS);
  readonly ends = new Int32Array(MAX_TOKENS);
  count = 0;
  buf: Buffer = Buffer.alloc(0);
  lineStart = 0;
  lineEnd = 0;

  /**
   * Splits `buf[start, end)` (the line without CRLF). Returns false when the line has more than
   * {@link MAX_TOKENS} tokens (after dropping trailing empty ones).
   */
  split(buf: Buffer, start: number, end: number): boolean {
    this.buf = buf;
    this.lineStart = start;
    this.lineEnd = end;
    const starts = this.starts;
    const ends = this.ends;
    let n = 0;
    let tokStart = start;
    for (let i = start; i < end; i++) {
      if (buf[i] !== SPACE) continue;
      if (n === MAX_TOKENS) return this.onlySpacesFrom(tokStart);
      starts[n] = tokStart;
      ends[n] = i;
      n++;
      tokStart = i + 1;
    }
    if (tokStart < end || n === 0) {
      if (n === MAX_TOKENS) return false;
      starts[n] = tokStart;
      ends[n] = end;
      n++;
    }
    // Java's split drops trailing empty tokens (but keeps a lone empty one for an empty line).
    while (n > 1 && starts[n - 1] === ends[n - 1]) n--;
    this.count = n;
    return true;
  }

  private onlySpacesFrom(i: number): boolean {
    for (let j = i; j < this.lineEnd; j++) if (this.buf[j] !== SPACE) return false;
    // Exactly MAX_TOKENS tokens followed by spaces only: trailing empties, dropped.
    let n = MAX_TOKENS;
    while (n > 1 && this.starts[n - 1] === this.ends[n - 1]) n--;
    this.count = n;
    return true;
  }

  start(i: number): number { return this.starts[i]!; }
  end(i: number): number { return this.ends[i]!; }
  length(i: number): number { return this.ends[i]! - this.starts[i]!; }

  /** True when token `i` equals the ASCII bytes `word`. */
  equals(i: number, word: Uint8Array): boolean {
    const s = this.starts[i]!;
    if (this.ends[i]! - s !== word.length) return false;
    const buf = this.buf;
    for (let k = 0; k < word.length; k++) if (buf[s + k] !== word[k]) return false;
    return true;
  }

  /** Token `i` decoded as UTF-8. */
  text(i: number): string {
    return this.buf.toString('utf8', this.starts[i]!, this.ends[i]!);
  }

  /** Token `i` as an int32 (Java's Integer.parseInt: optional sign, ASCII digits); NaN when it is not one. */
  int32(i: number): number {
    return parseInt32(this.buf, this.starts[i]!, this.ends[i]!);
  }

  /** Token `i` as an int64 clamped to ±MAX_SAFE_INTEGER; NaN when it is not an int64. */
  int64(i: number): number {
    return parseInt64(this.buf, this.starts[i]!, this.ends[i]!);
  }

  /** commons-lang 2 `StringUtils.isNumeric`: every byte a digit (true for the empty token, as there). */
  isNumeric(i: number): boolean {
    const buf = this.buf;
    for (let k = this.starts[i]!; k < this.ends[i]!; k++) {
      const c = buf[k]!;
      if (c < ZERO || c > NINE) return false;
    }
    return true;
  }
}

/** Parses an int32 from `buf[s, e)`; NaN when it is empty, has a non-digit, or is out of range. */
export function parseInt32(buf: Uint8Array, s: number, e: number): number {
  let i = s;
  let neg = false;
  if (i < e && (buf[i] === MINUS || buf[i] === PLUS)) { neg = buf[i] === MINUS; i++; }
  if (i === e) return NaN;
  while (i < e - 1 && buf[i] === ZERO) i++;
  if (e - i > 10) return NaN;
  let v = 0;
  for (; i < e; i++) {
    const d = buf[i]! - ZERO;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  if (neg) return v > 2147483648 ? NaN : -v | 0;
  return v > 2147483647 ? NaN : v;
}

/**
 * Parses an int64 from `buf[s, e)` and clamps it to ±Number.MAX_SAFE_INTEGER (offsets beyond 2^53 only ever
 * mean "the end"); NaN when it is not a valid int64.
 */
export function parseInt64(buf: Uint8Array, s: number, e: number): number {
  let i = s;
  let neg = false;
  if (i < e && (buf[i] === MINUS || buf[i] === PLUS)) { neg = buf[i] === MINUS; i++; }
  if (i === e) return NaN;
  while (i < e - 1 && buf[i] === ZERO) i++;
  const digits = e - i;
  if (digits > 19) return NaN;
  let v = 0;
  for (let k = i; k < e; k++) {
    const d = buf[k]! - ZERO;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  if (digits === 19 && exceeds(buf, i, neg ? INT64_MIN_DIGITS : INT64_MAX_DIGITS)) return NaN;
  if (v > Number.MAX_SAFE_INTEGER) v = Number.MAX_SAFE_INTEGER;
  return neg && v !== 0 ? -v : v;
}

/** True when the 19 digits at `buf[i]` are lexicographically (= numerically) greater than `limit`. */
function exceeds(buf: Uint8Array, i: number, limit: Uint8Array): boolean {
  for (let k = 0; k < 19; k++) {
    const a = buf[i + k]!;
    const b = limit[k]!;
    if (a !== b) return a > b;
  }
  return false;
}

/** A printable excerpt of `buf[s, e)` for error messages: at most `max` bytes, others as `\xNN`. */
export function snippet(buf: Uint8Array, s: number, e: number, max = 64): string {
  const stop = Math.min(e, s + max);
  let out = '';
  for (let i = s; i < stop; i++) {
    const c = buf[i]!;
    out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return stop < e ? `${out}...` : out;
}
