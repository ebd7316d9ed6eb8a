import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventRingReader, EventRingWriter, allocateRing } from '../connectors/log4js/event-ring.js';
import { rng } from '../sdk/protocol/seeded-rng.js';

function text(random: () => number, maxLen: number): string {
  const n = Math.floor(random() * maxLen);
  let s = '';
  // Multi-byte characters too: the ring counts bytes, not characters.
  for (let i = 0; i < n; i++) s += random() < 0.1 ? 'é€' : String.fromCharCode(97 + Math.floor(random() * 26));
  return s;
}

describe('connectors/log4js/event-ring', () => {
  it('hands entries back in order with key and attribute intact, across wraps', () => {
    const ring = allocateRing(256, 100);
    const w = new EventRingWriter(ring, 10);
    const r = new EventRingReader(ring);
    for (let i = 0; i < 500; i++) {
      assert.equal(w.write(`k${i}`, 'INFO', `payload-${i}-${'x'.repeat(i % 37)}`), 'ok');
      const e = r.next();
      assert.ok(e !== undefined);
      assert.equal(e.key, `k${i}`);
      assert.equal(e.attribute, 'INFO');
      assert.equal(e.value.toString(), `payload-${i}-${'x'.repeat(i % 37)}`);
      r.release();
    }
    assert.equal(w.count, 0);
    assert.equal(w.usedBytes, 0);
  });

  it('refuses a write beyond the event bound or the byte bound, and takes it once the reader released', () => {
    const ring = allocateRing(1024, 3);
    const w = new EventRingWriter(ring, 10);
    const r = new EventRingReader(ring);
    for (let i = 0; i < 3; i++) assert.equal(w.write('', '', 'a'), 'ok');
    assert.equal(w.write('', '', 'a'), 'full');
    r.next();
    assert.equal(w.write('', '', 'a'), 'full', 'a peeked entry still holds its room');
    r.release();
    assert.equal(w.write('', '', 'a'), 'ok');
    const bytes = allocateRing(128, 100);
    const wb = new EventRingWriter(bytes, 10);
    assert.equal(wb.write('', '', 'x'.repeat(40)), 'ok');
    assert.equal(wb.write('', '', 'x'.repeat(40)), 'ok');
    assert.equal(wb.write('', '', 'x'.repeat(40)), 'full');
    assert.equal(wb.write('', '', 'x'.repeat(57)), 'oversized', 'more than half the ring');
  });

  it('re-reads from the first unreleased entry after a rewind or in a new reader (a restarted worker)', () => {
    const ring = allocateRing(128, 100);
    const w = new EventRingWriter(ring, 10);
    const r = new EventRingReader(ring);
    for (let i = 0; i < 4; i++) w.write('', '', `e${i}`);
    r.next();
    r.release();
    r.next();
    r.next();
    r.rewind();
    assert.equal(r.next()?.value.toString(), 'e1');
    const again = new EventRingReader(ring);
    assert.equal(again.next()?.value.toString(), 'e1');
  });

  it('matches a queue model under random writes, peeks and releases (seed in METAQ_SEED)', () => {
    const seed = Number(process.env.METAQ_SEED ?? Date.now() % 1_000_000);
    console.log(`event-ring model seed=${seed}`);
    const random = rng(seed);
    const capacity = 64 + Math.floor(random() * 512);
    const maxEvents = 1 + Math.floor(random() * 20);
    const ring = allocateRing(capacity, maxEvents);
    const w = new EventRingWriter(ring, 4);
    const r = new EventRingReader(ring);
    const model: string[] = [];
    let peeked = 0;
    let written = 0;
    for (let step = 0; step < 20_000; step++) {
      const op = random();
      if (op < 0.5) {
        const payload = `${written}:${text(random, 60)}`;
        const res = w.write(text(random, 5), text(random, 3), payload);
        if (res === 'ok') {
          model.push(payload);
          written++;
        } else {
          assert.ok(res === 'oversized' || model.length > 0, `seed ${seed}: an empty ring refused ${payload.length} chars`);
        }
      } else if (op < 0.8) {
        const e = r.next();
        if (peeked < model.length) {
          assert.equal(e?.value.toString(), model[peeked], `seed ${seed} step ${step}`);
          peeked++;
        } else {
          assert.equal(e, undefined, `seed ${seed} step ${step}`);
        }
      } else {
        r.release();
        model.splice(0, peeked);
        peeked = 0;
      }
      assert.equal(w.count, model.length, `seed ${seed} step ${step}`);
      assert.ok(w.count <= maxEvents && w.usedBytes <= ring.data.byteLength && ring.data.byteLength < capacity + 4, `seed ${seed} step ${step}: bound exceeded`);
    }
    assert.ok(written > 1000, `seed ${seed}: only ${written} writes went through`);
  });
});
