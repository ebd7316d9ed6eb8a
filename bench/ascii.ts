/**
 * Decimal numbers read and written straight from and into byte buffers, so the hot loops of the load
 * generators and the raw sink never build strings per message.
 */

export { decimalLength, writeDecimal } from '../sdk/protocol/digits.js';

export const CR = 0x0d;
export const LF = 0x0a;
export const SPACE = 0x20;
const ZERO = 0x30;
const MINUS = 0x2d;

/** Parses an ASCII decimal integer in `buf[start, end)`; NaN if it is empty or not a number. */
export function parseDecimal(buf: Uint8Array, start: number, end: number): number {
  if (start >= end) return Number.NaN;
  let neg = false;
  if (buf[start] === MINUS) {
    neg = true;
    start++;
    if (start >= end) return Number.NaN;
  }
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - ZERO;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/**
 * Splits the line `buf[start, end)` at single spaces into `starts`/`ends` (token bounds); returns the token
 * count, or -1 if there are more than `starts.length` tokens.
 */
export function tokenize(buf: Uint8Array, start: number, end: number, starts: Int32Array, ends: Int32Array): number {
  let count = 0;
  let tokStart = start;
  for (let i = start; i <= end; i++) {
    if (i === end || buf[i] === SPACE) {
      if (count === starts.length) return -1;
      starts[count] = tokStart;
      ends[count] = i;
      count++;
      tokStart = i + 1;
    }
  }
  return count;
}

/** Joins a carried-over partial frame with newly received bytes (the carry is usually empty). */
export function joinCarry(carry: Buffer | null, chunk: Buffer): Buffer {
  return carry === null || carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
}
