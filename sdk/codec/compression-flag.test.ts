/**
 * The compression bits of the record flag. FLAG_SEED (printed on every run) replays the random flags.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError, UnsupportedCompressionError } from '../errors.js';
import { FLAG_ATTRIBUTE } from '../protocol/record.js';
import {
  COMPRESSION_FLAG_MASK, COMPRESSION_FLAG_SHIFT, CompressionTypes, compressionOfFlag, flagWithCompression,
  type CompressionType,
} from './compression.js';

const seed = Number(process.env['FLAG_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const TYPES = Object.values(CompressionTypes);

describe('codec/compression flag bits', () => {
  it('uses bits 16..18, clear of MetaQ attribute bit 0', () => {
    assert.equal(COMPRESSION_FLAG_SHIFT, 16);
    assert.equal(COMPRESSION_FLAG_MASK, 0x70000);
    assert.equal(COMPRESSION_FLAG_MASK & FLAG_ATTRIBUTE, 0);
  });

  it('leaves MetaQ flags unchanged when there is no compression', () => {
    assert.equal(flagWithCompression(0, CompressionTypes.None), 0);
    assert.equal(flagWithCompression(FLAG_ATTRIBUTE, CompressionTypes.None), FLAG_ATTRIBUTE);
    assert.equal(compressionOfFlag(0), CompressionTypes.None);
    assert.equal(compressionOfFlag(FLAG_ATTRIBUTE), CompressionTypes.None);
  });

  it('writes each type into the flag and keeps the attribute bit', () => {
    assert.equal(flagWithCompression(FLAG_ATTRIBUTE, CompressionTypes.GZIP), 0x10001);
    assert.equal(flagWithCompression(0, CompressionTypes.ZSTD), 0x40000);
    for (const type of TYPES) {
      const flag = flagWithCompression(FLAG_ATTRIBUTE, type);
      assert.equal(compressionOfFlag(flag), type);
      assert.equal(flag & FLAG_ATTRIBUTE, FLAG_ATTRIBUTE, `attribute bit kept for type ${type}`);
    }
  });

  it('replaces earlier compression bits instead of OR-ing into them', () => {
    const gzip = flagWithCompression(FLAG_ATTRIBUTE, CompressionTypes.GZIP);
    const snappy = flagWithCompression(gzip, CompressionTypes.Snappy);
    assert.equal(compressionOfFlag(snappy), CompressionTypes.Snappy);
    assert.equal(flagWithCompression(snappy, CompressionTypes.None), FLAG_ATTRIBUTE);
  });

  it(`keeps every other bit of any int32 flag, sign bit included (FLAG_SEED=${seed})`, () => {
    console.log(`flag property seed: FLAG_SEED=${seed}`);
    fc.assert(fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(...TYPES),
      (raw, type: CompressionType) => {
        const other = raw & ~COMPRESSION_FLAG_MASK;
        const flag = flagWithCompression(raw, type);
        assert.equal(flag & ~COMPRESSION_FLAG_MASK, other);
        assert.equal(compressionOfFlag(flag), type);
      }), { seed, numRuns: 1000 });
  });

  it('refuses a flag naming an undefined compression code, naming the code', () => {
    for (const code of [5, 6, 7]) {
      assert.throws(() => compressionOfFlag(FLAG_ATTRIBUTE | (code << 16)), (e: unknown) => {
        assert.ok(e instanceof UnsupportedCompressionError);
        assert.equal(e.compression, code);
        assert.match(e.message, new RegExp(`compression code ${code}, which is not defined \\(known: 0=None, 1=GZIP`));
        return true;
      });
    }
  });

  it('refuses to write a type that is not a compression type', () => {
    for (const bad of [5, -1, 1.5, Number.NaN]) {
      assert.throws(() => flagWithCompression(0, bad as CompressionType), InvalidArgumentError, String(bad));
    }
  });
});
