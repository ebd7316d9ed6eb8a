import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur2, toPositive } from '../codec/murmur2.js';
import { InvalidArgumentError, UnknownTopicError } from '../errors.js';
import type { Partition } from '../message.js';
import { partitionSelector, RandomSelector } from './partition-selector.js';

const parts = (n: number, brokerId = 0): Partition[] => Array.from({ length: n }, (_, partition) => ({ brokerId, partition }));

describe('sdk/producer/partition-selector', () => {
  it('goes round-robin as MetaQ: the first pick is index 1, then 2, then wraps to 0', () => {
    const s = partitionSelector('round-robin');
    const ps = parts(3);
    const seq = Array.from({ length: 7 }, () => s.select('t', ps, {}).partition);
    assert.deepEqual(seq, [1, 2, 0, 1, 2, 0, 1]);
  });

  it('keeps one round-robin counter per topic', () => {
    const s = partitionSelector('round-robin');
    const ps = parts(4);
    assert.equal(s.select('a', ps, {}).partition, 1);
    assert.equal(s.select('a', ps, {}).partition, 2);
    assert.equal(s.select('b', ps, {}).partition, 1);
    assert.equal(s.select('a', ps, {}).partition, 3);
  });

  it('hashes a key with murmur2 so equal keys always get the same partition', () => {
    const s = partitionSelector('hash');
    const ps = parts(7);
    for (const key of ['customer-1', 'customer-2', 'x', '', Buffer.from([1, 2, 3])]) {
      const expected = toPositive(murmur2(key)) % 7;
      for (let i = 0; i < 3; i++) assert.equal(s.select('t', ps, { key }).partition, expected);
    }
  });

  it('spreads different keys over several partitions', () => {
    const s = partitionSelector('hash');
    const ps = parts(8);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(s.select('t', ps, { key: `k${i}` }).partition);
    assert.ok(seen.size >= 6, `200 keys landed on only ${seen.size} of 8 partitions`);
  });

  it('sends keyless records round-robin under the hash selector', () => {
    const s = partitionSelector('hash');
    const ps = parts(3);
    assert.deepEqual([0, 1, 2, 3].map(() => s.select('t', ps, {}).partition), [1, 2, 0, 1]);
  });

  it('picks random partitions among those offered', () => {
    const s = new RandomSelector();
    const ps = parts(4);
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) seen.add(s.select('t', ps).partition);
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  });

  it('uses a user function and accepts an equal partition object', () => {
    const s = partitionSelector((_topic, ps, record) => ({ brokerId: 0, partition: record.key === 'last' ? ps.length - 1 : 0 }));
    const ps = parts(5);
    assert.equal(s.select('t', ps, { key: 'last' }), ps[4]);
    assert.equal(s.select('t', ps, { key: 'other' }), ps[0]);
  });

  it('refuses a user function choosing a partition that was not offered', () => {
    const s = partitionSelector(() => ({ brokerId: 3, partition: 0 }));
    assert.throws(() => s.select('t', parts(2), {}), InvalidArgumentError);
  });

  it('fails with UnknownTopicError when a topic has no partitions', () => {
    for (const name of ['round-robin', 'random', 'hash'] as const) {
      assert.throws(() => partitionSelector(name).select('t', [], { key: 'k' }), UnknownTopicError, name);
    }
  });

  it('refuses an unknown selector name', () => {
    assert.throws(() => partitionSelector('sticky' as 'random'), InvalidArgumentError);
  });
});
