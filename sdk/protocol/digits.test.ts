import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digitCount, writeDecimal } from './digits.js';

describe('sdk/protocol/digits', () => {
  const values = [0, 1, 9, 10, 99, 100, 999_999, 1_000_000, 9_999_999, 10_000_000, 2 ** 31 - 1, 123_456_789_012_345,
    Number.MAX_SAFE_INTEGER];

  it('counts the decimal digits of every magnitude', () => {
    for (const n of values) assert.equal(digitCount(n), String(n).length, String(n));
  });

  it('writes integers, negative ones included, exactly as String() does', () => {
    const buf = Buffer.alloc(32);
    for (const n of [...values, -1, -(2 ** 31)]) {
      const end = writeDecimal(buf, 3, n);
      assert.equal(buf.toString('latin1', 3, end), String(n));
    }
  });
});
