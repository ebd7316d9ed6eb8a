import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { crc32Masked, crc32MaskedRange } from './crc32.js';

describe('sdk/protocol/crc32', () => {
  it('agrees with zlib.crc32 (masked to 31 bits) at every size from 0 to 600 bytes and at odd offsets', () => {
    const buf = randomBytes(700);
    for (let n = 0; n <= 600; n++) {
      for (const start of [0, 3, 7]) {
        const want = crc32(buf.subarray(start, start + n)) & 0x7fffffff;
        assert.equal(crc32MaskedRange(buf, start, start + n), want, `size ${n} at ${start}`);
      }
    }
    assert.equal(crc32Masked(randomBytes(0)), 0);
  });

  it('gives MetaQ\'s checksum of "hello"', () => {
    assert.equal(crc32Masked(Buffer.from('hello')), 907060870);
  });
});
