/**
 * murmur2 against kafkajs's own implementation as the oracle, plus Kafka's Java UtilsTest vectors.
 * MURMUR_SEED (printed on every run) replays the random keys.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { murmur2, toPositive } from './murmur2.js';

const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: Buffer | string) => number;

const seed = Number(process.env['MURMUR_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

describe('codec/murmur2', () => {
  it('gives the hashes of Kafka Java UtilsTest for its fixed keys', () => {
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [key, hash] of vectors) assert.equal(murmur2(key), hash, key);
    assert.equal(murmur2(Buffer.from('abc')), 479470107);
  });

  it('hashes a string as its UTF-8 bytes', () => {
    for (const key of ['', 'Ω', '☃ snow', '💩💩💩', 'x'.repeat(1000), 'é'.repeat(300)]) {
      assert.equal(murmur2(key), murmur2(Buffer.from(key, 'utf8')), `length ${key.length}`);
    }
  });

  it('hashes a Buffer slice by its own bytes, not the bytes around it', () => {
    const whole = Buffer.from('0123456789abcdef');
    assert.equal(murmur2(whole.subarray(3, 10)), murmur2('3456789'));
  });

  it(`agrees with kafkajs on hundreds of random keys (MURMUR_SEED=${seed})`, () => {
    console.log(`murmur2 property seed: MURMUR_SEED=${seed}`);
    const key = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', minLength: 200, maxLength: 400 }),
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    );
    fc.assert(fc.property(key, (k) => {
      assert.equal(murmur2(k), kafkajsMurmur2(k));
    }), { seed, numRuns: 500 });
  });

  it('maps every int into [0, 2^31) with toPositive, including -2^31', () => {
    assert.equal(toPositive(-973932308), 1173551340);
    assert.equal(toPositive(-(2 ** 31)), 0);
    assert.equal(toPositive(2 ** 31 - 1), 2 ** 31 - 1);
    assert.equal(toPositive(-1), 2 ** 31 - 1);
    assert.equal(toPositive(0), 0);
  });
});
