/**
 * MetaQ's checksum: CRC-32 (zlib's polynomial) masked to 31 bits. Small inputs use a slice-by-8 table in JS, which
 * beats the call into zlib below a few hundred bytes; larger ones use zlib.crc32.
 */
import { crc32 } from 'node:zlib';

/**
 * Below this size a table CRC in JS beats zlib.crc32, whose call and the subarray it needs cost ~200 ns
 * (measured on Node 20: 100 B records 88 ns vs 230 ns; 1 KiB 820 ns vs 420 ns).
 */
const JS_CRC_MAX = 256;

/**
 * CRC32 of `buf[start, end)` masked to 31 bits, as MetaQ stores it.
 *
 * @example
 * ```ts
 * crc32MaskedRange(Buffer.from('xhello'), 1, 6) === crc32Masked(Buffer.from('hello')); // true
 * ```
 */
export function crc32MaskedRange(buf: Uint8Array, start: number, end: number): number {
  if (end - start > JS_CRC_MAX) return crc32(buf.subarray(start, end)) & 0x7fffffff;
  return crc32Small(buf, start, end) & 0x7fffffff;
}

/**
 * CRC32 of `data` masked to 31 bits, as MetaQ computes it.
 *
 * @example
 * ```ts
 * crc32Masked(Buffer.from('hello')); // 907060870
 * ```
 */
export function crc32Masked(data: Uint8Array): number {
  return crc32MaskedRange(data, 0, data.byteLength);
}

/** Slice-by-8 tables of the reflected CRC-32 polynomial (zlib's). */
const T = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

function crc32Small(b: Uint8Array, start: number, end: number): number {
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) ^ c;
    c = T[1792 + (a & 0xff)]! ^ T[1536 + ((a >>> 8) & 0xff)]! ^ T[1280 + ((a >>> 16) & 0xff)]! ^ T[1024 + (a >>> 24)]! ^
      T[768 + b[i + 4]!]! ^ T[512 + b[i + 5]!]! ^ T[256 + b[i + 6]!]! ^ T[b[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return c ^ -1;
}
