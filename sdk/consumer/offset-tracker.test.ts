import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OffsetTracker } from './offset-tracker.js';

const src = (id: number) => ({ id: BigInt(id) });

/** xorshift32: small, seedable, good enough to shuffle acks. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

describe('sdk/consumer/offset-tracker', () => {
  it('starts at the given offset and id', () => {
    const t = new OffsetTracker(100, 7n);
    assert.equal(t.watermark, 100);
    assert.equal(t.lastId, 7n);
    assert.equal(t.pending, 0);
  });

  it('moves the watermark only over a contiguous prefix of acks', () => {
    const t = new OffsetTracker(0);
    const a = t.track(10, src(1));
    const b = t.track(20, src(2));
    const c = t.track(30, src(3));
    assert.equal(t.ack(c), false);
    assert.equal(t.watermark, 0, 'an ack out of order never skips a gap');
    assert.equal(t.ack(a), true);
    assert.equal(t.watermark, 10);
    assert.equal(t.lastId, 1n);
    assert.equal(t.ack(b), true);
    assert.equal(t.watermark, 30, 'the earlier out-of-order ack is passed at once');
    assert.equal(t.lastId, 3n);
    assert.equal(t.pending, 0);
  });

  it('ignores a second ack and an ack of an unknown sequence number', () => {
    const t = new OffsetTracker(0);
    const a = t.track(10, src(1));
    assert.equal(t.ack(a), true);
    assert.equal(t.ack(a), false);
    assert.equal(t.ack(99), false);
    assert.equal(t.ack(-1), false);
    assert.equal(t.watermark, 10);
  });

  it('keeps the previous id over an offset move (skip without a source)', () => {
    const t = new OffsetTracker(0);
    t.skip(10, src(5));
    t.skip(4096, null);
    assert.equal(t.watermark, 4096);
    assert.equal(t.lastId, 5n);
  });

  it('grows its ring while a gap holds many acked entries behind it', () => {
    const t = new OffsetTracker(0, -1n, 8);
    const first = t.track(1, src(1));
    const rest: number[] = [];
    for (let i = 2; i <= 1000; i++) rest.push(t.track(i, src(i)));
    for (const s of rest) t.ack(s);
    assert.equal(t.watermark, 0);
    assert.equal(t.pending, 1000);
    t.ack(first);
    assert.equal(t.watermark, 1000);
    assert.equal(t.lastId, 1000n);
  });

  it('matches a naive model under random interleavings of track and ack (seed in METAQ_SEED)', () => {
    const seed = Number(process.env.METAQ_SEED ?? Date.now() % 1_000_000);
    console.log(`offset-tracker seed ${seed} (replay with METAQ_SEED=${seed})`);
    const rand = rng(seed);
    for (let round = 0; round < 50; round++) {
      const t = new OffsetTracker(0, -1n, 8);
      const acked: boolean[] = [];
      const open: number[] = [];
      let tracked = 0;
      for (let step = 0; step < 500; step++) {
        if (open.length === 0 || rand() < 0.5) {
          open.push(t.track((tracked + 1) * 10, src(tracked + 1)));
          acked.push(false);
          tracked++;
        } else {
          const k = Math.floor(rand() * open.length);
          const seq = open.splice(k, 1)[0]!;
          t.ack(seq);
          acked[seq] = true;
        }
        let prefix = 0;
        while (prefix < acked.length && acked[prefix] === true) prefix++;
        assert.equal(t.watermark, prefix * 10, `seed ${seed} round ${round} step ${step}`);
        assert.equal(t.lastId, prefix === 0 ? -1n : BigInt(prefix), `seed ${seed} round ${round} step ${step}`);
      }
    }
  });
});
