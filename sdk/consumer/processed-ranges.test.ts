import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessedRange, ProcessedRanges } from './processed-ranges.js';

describe('sdk/consumer/processed-ranges', () => {
  it('contains nothing at first', () => {
    const r = new ProcessedRange();
    assert.equal(r.contains(0), false);
  });

  it('extends a run that continues it and replaces one that does not', () => {
    const r = new ProcessedRange();
    r.merge(100, 200);
    assert.deepEqual([r.contains(99), r.contains(100), r.contains(199), r.contains(200)], [false, true, true, false]);
    r.merge(200, 300);
    assert.deepEqual([r.from, r.to], [100, 300], 'a run starting at the end extends it');
    r.merge(150, 250);
    assert.deepEqual([r.from, r.to], [100, 300], 'a run inside changes nothing');
    r.merge(1000, 1100);
    assert.deepEqual([r.from, r.to], [1000, 1100], 'a disjoint run replaces it');
    r.merge(0, 1000);
    assert.deepEqual([r.from, r.to], [0, 1000], 'a run before it replaces it (only the latest run is kept)');
    r.merge(5, 5);
    assert.deepEqual([r.from, r.to], [0, 1000], 'an empty run changes nothing');
  });

  it('keeps one range per topic and partition', () => {
    const ranges = new ProcessedRanges();
    ranges.of('t', { brokerId: 0, partition: 1 }).merge(0, 10);
    assert.equal(ranges.of('t', { brokerId: 0, partition: 1 }).contains(5), true);
    assert.equal(ranges.of('t', { brokerId: 0, partition: 2 }).contains(5), false);
    assert.equal(ranges.of('u', { brokerId: 0, partition: 1 }).contains(5), false);
  });
});
