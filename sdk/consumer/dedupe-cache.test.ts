import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DedupeCache } from './dedupe-cache.js';

describe('consumer/dedupe-cache', () => {
  it('remembers an id per group', () => {
    const c = new DedupeCache(16);
    assert.equal(c.seen('g', 1n), false);
    assert.equal(c.seen('g', 1n), true);
    assert.equal(c.seen('h', 1n), false, 'another group has not seen it');
    assert.equal(c.seen('h', 1n), true);
    assert.equal(c.seen('g', 2n), false);
    assert.equal(c.count, 3);
  });

  it('evicts the least recently seen pair when full', () => {
    const c = new DedupeCache(3);
    c.seen('g', 1n);
    c.seen('g', 2n);
    c.seen('g', 3n);
    assert.equal(c.seen('g', 1n), true, 'a hit makes 1 the most recent');
    c.seen('g', 4n); // evicts 2, the least recent
    assert.equal(c.count, 3);
    assert.equal(c.seen('g', 3n), true);
    assert.equal(c.seen('g', 1n), true);
    assert.equal(c.seen('g', 4n), true);
    assert.equal(c.seen('g', 2n), false, '2 was evicted');
  });

  it('keeps ids of different groups apart across the whole 64-bit range', () => {
    const c = new DedupeCache(100);
    const big = (1n << 64n) - 1n;
    assert.equal(c.seen('a', big), false);
    assert.equal(c.seen('b', big), false);
    assert.equal(c.seen('b', 0n), false);
    assert.equal(c.seen('a', 0n), false);
    assert.equal(c.seen('a', -1n), true, 'a negative id is its unsigned twin');
    assert.equal(c.seen('c', (1n << 63n)), false);
    assert.equal(c.seen('a', (1n << 63n)), false);
  });

  it('sees nothing when its size is 0', () => {
    const c = new DedupeCache(0);
    assert.equal(c.seen('g', 1n), false);
    assert.equal(c.seen('g', 1n), false);
    assert.equal(c.count, 0);
  });

  it('refuses a negative or fractional size', () => {
    assert.throws(() => new DedupeCache(-1), RangeError);
    assert.throws(() => new DedupeCache(1.5), RangeError);
  });

  it('stays bounded over many ids', () => {
    const c = new DedupeCache(4096);
    for (let i = 0n; i < 100_000n; i++) c.seen(i % 2n === 0n ? 'x' : 'y', i);
    assert.equal(c.count, 4096);
    assert.equal(c.seen('y', 99_999n), true);
    assert.equal(c.seen('x', 0n), false);
  });
});
