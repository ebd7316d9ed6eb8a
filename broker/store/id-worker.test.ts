import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../sdk/errors.js';
import { idToDecimal } from '../../sdk/protocol/record.js';
import { ID_EPOCH_MS, IdWorker } from './id-worker.js';

describe('store/id-worker', () => {
  it('makes unique, strictly increasing ids carrying the broker id', () => {
    const w = new IdWorker(517);
    let prev = -1n;
    for (let i = 0; i < 200_000; i++) {
      const id = w.nextBigInt();
      assert.ok(id > prev, `id ${i} ${id} <= ${prev}`);
      prev = id;
    }
    assert.equal(Number((prev >> 12n) & 0x3ffn), 517);
  });

  it('moves to the next millisecond when 4096 ids were used in one', () => {
    const w = new IdWorker(1);
    const ms = new Set<bigint>();
    for (let i = 0; i < 5000; i++) ms.add(w.nextBigInt() >> 22n);
    const before = Date.now() - ID_EPOCH_MS;
    assert.ok(ms.size >= 2);
    assert.ok([...ms].every((m) => m <= BigInt(before + 10)), 'never far ahead of the clock');
  });

  it('never repeats ids when the wall clock steps back', () => {
    let wall = 1_700_000_000_000;
    const a = new IdWorker(3, () => wall);
    const first = a.nextBigInt();
    wall -= 60_000;
    assert.ok(a.nextBigInt() > first, 'the monotonic clock ignores the step');
  });

  it('writes the same decimal text as bigint does', () => {
    const w = new IdWorker(1023);
    const buf = Buffer.alloc(32);
    for (let i = 0; i < 20_000; i++) {
      w.next();
      const end = w.writeDecimal(buf, 3);
      assert.equal(buf.toString('latin1', 3, end), idToDecimal(w.hi, w.lo));
    }
    const early = new IdWorker(0, () => ID_EPOCH_MS);
    early.next();
    const end = early.writeDecimal(buf, 0);
    assert.equal(buf.toString('latin1', 0, end), idToDecimal(early.hi, early.lo));
  });

  it('refuses a broker id outside 0..1023', () => {
    for (const bad of [-1, 1024, 1.5]) assert.throws(() => new IdWorker(bad), ConfigError);
  });
});
