/**
 * Bytes of the text protocol for the load generators and the raw sink, which never build strings per message:
 * decimals are written with sdk/protocol/digits.ts and read (lines split) with sdk/protocol/line-tokens.ts.
 */

export { decimalLength, writeDecimal } from '../sdk/protocol/digits.js';

export const CR = 0x0d;
export const LF = 0x0a;
export const SPACE = 0x20;

/** Joins a carried-over partial frame with newly received bytes (the carry is usually empty). */
export function joinCarry(carry: Buffer | null, chunk: Buffer): Buffer {
  return carry === null || carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
}
