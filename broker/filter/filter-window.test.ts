import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodePayload, encodeRecord } from '../../sdk/protocol/record.js';
import type { FilterMessage } from './filter-message.js';
import { filterWindow, type MessageTest, type WindowVerdict } from './filter-window.js';

interface Rec { readonly id: bigint; readonly attribute: string | null; readonly payload: string }

/** The records concatenated, and each one's start and end offset in the buffer. */
function build(recs: readonly Rec[]): { buf: Buffer; bounds: Array<[number, number]> } {
  const parts: Buffer[] = [];
  const bounds: Array<[number, number]> = [];
  let pos = 0;
  for (const r of recs) {
    const { data, flag } = encodePayload(Buffer.from(r.payload), r.attribute);
    const rec = encodeRecord(r.id, flag, data);
    parts.push(rec);
    bounds.push([pos, pos + rec.length]);
    pos += rec.length;
  }
  return { buf: Buffer.concat(parts), bounds };
}

/** A filter accepting payloads that start with 'a', counting its calls. */
function byLetter(): MessageTest & { calls: number } {
  return {
    calls: 0,
    test(m: FilterMessage) {
      this.calls++;
      return m.payload[0] === 0x61;
    },
  };
}

const recs = (payloads: string): Rec[] =>
  payloads.split(' ').map((p, i) => ({ id: BigInt(i + 1), attribute: i % 2 === 0 ? `attr-${i}` : null, payload: p }));

describe('broker/filter/filter-window', () => {
  it('sends the whole window when every record is accepted', () => {
    const { buf } = build(recs('a1 a2 a3'));
    assert.deepEqual(filterWindow(buf, 0, 't', 0, byLetter()), { kind: 'send', bytes: buf.length, messages: 3, final: false });
  });

  it('leaves a cut tail out of what it sends and does not scan it', () => {
    const { buf, bounds } = build(recs('a1 a2 a3'));
    const cut = bounds[2]![0] + 25;
    const f = byLetter();
    assert.deepEqual(filterWindow(buf.subarray(0, cut), 0, 't', 0, f), { kind: 'send', bytes: bounds[2]![0], messages: 2, final: false });
    assert.equal(f.calls, 2);
    // A cut header too.
    assert.deepEqual(filterWindow(buf.subarray(0, bounds[1]![0] + 7), 0, 't', 0, byLetter()),
      { kind: 'send', bytes: bounds[1]![0], messages: 1, final: false });
  });

  it('skips every whole record when all are rejected, and not the cut tail', () => {
    const { buf, bounds } = build(recs('r1 r2 r3'));
    assert.deepEqual(filterWindow(buf, 100, 't', 0, byLetter()), { kind: 'skip', bytes: buf.length, final: false });
    assert.deepEqual(filterWindow(buf.subarray(0, buf.length - 1), 100, 't', 0, byLetter()),
      { kind: 'skip', bytes: bounds[2]![0], final: false });
  });

  it('sends the accepted run at the start and stops at the first rejected record', () => {
    const { buf, bounds } = build(recs('a1 a2 r3 a4 a5'));
    const f = byLetter();
    assert.deepEqual(filterWindow(buf, 0, 't', 0, f), { kind: 'send', bytes: bounds[2]![0], messages: 2, final: true });
    assert.equal(f.calls, 3, 'the scan stops once the answer is known');
  });

  it('skips a rejected run to the first accepted record', () => {
    const { buf, bounds } = build(recs('r1 r2 a3 r4'));
    const f = byLetter();
    assert.deepEqual(filterWindow(buf, 0, 't', 0, f), { kind: 'skip', bytes: bounds[2]![0], final: true });
    assert.equal(f.calls, 3);
  });

  it('answers a window without a whole record unchanged, so the client grows its fetch size', () => {
    const { buf } = build(recs('a1'));
    const f = byLetter();
    assert.deepEqual(filterWindow(buf.subarray(0, buf.length - 1), 0, 't', 0, f), { kind: 'unchanged' });
    assert.deepEqual(filterWindow(buf.subarray(0, 5), 0, 't', 0, f), { kind: 'unchanged' });
    assert.equal(f.calls, 0);
  });

  it('stops at a record with a negative length as at a cut tail', () => {
    const { buf, bounds } = build(recs('a1 a2 a3'));
    buf.writeInt32BE(-5, bounds[1]![0]);
    assert.deepEqual(filterWindow(buf, 0, 't', 0, byLetter()), { kind: 'send', bytes: bounds[1]![0], messages: 1, final: false });
  });

  it('shows the filter each message\'s id, topic, partition, offset, flag, attribute and payload', () => {
    const input: Rec[] = [
      { id: 2n ** 62n + 5n, attribute: 'vip', payload: 'first' },
      { id: 7n, attribute: null, payload: 'second' },
      { id: 8n, attribute: '', payload: '' },
    ];
    const { buf, bounds } = build(input);
    const seen: unknown[] = [];
    const v = filterWindow(buf, 1000, 'orders', 3, {
      test(m) {
        seen.push([m.id, m.topic, m.partition, m.offset, m.flag & 1, m.attribute, m.payload.toString(), m.attribute]);
        return true;
      },
    });
    assert.deepEqual(v, { kind: 'send', bytes: buf.length, messages: 3, final: false });
    assert.deepEqual(seen, [
      [2n ** 62n + 5n, 'orders', 3, 1000, 1, 'vip', 'first', 'vip'],
      [7n, 'orders', 3, 1000 + bounds[1]![0], 0, null, 'second', null],
      [8n, 'orders', 3, 1000 + bounds[2]![0], 1, '', '', ''],
    ]);
  });

  it('lets a consumer following the answers receive exactly the accepted messages, in order, to the end', () => {
    const seed = Number(process.env.FILTER_WINDOW_SEED ?? Date.now() % 1_000_000);
    console.log(`filter-window walk seed ${seed} (replay with FILTER_WINDOW_SEED=${seed})`);
    let state = seed;
    const rand = (n: number): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    for (let round = 0; round < 50; round++) {
      const acceptPct = [0, 10, 50, 90, 100][rand(5)]!;
      const input: Rec[] = Array.from({ length: 1 + rand(60) }, (_, i) => ({
        id: BigInt(i), attribute: rand(2) === 0 ? null : 'x'.repeat(rand(10)),
        payload: (rand(100) < acceptPct ? 'a' : 'r') + 'y'.repeat(rand(200)),
      }));
      const { buf, bounds } = build(input);
      const expected = input.filter((r) => r.payload.startsWith('a')).map((r) => r.id);
      const got: bigint[] = [];
      let offset = 0;
      for (let steps = 0; offset < buf.length; steps++) {
        assert.ok(steps < 10_000, `round ${round}: no progress at offset ${offset}`);
        let maxSize = 1 + rand(600);
        let v: WindowVerdict;
        // As a consumer does on a window without a whole record: fetch again with a larger size.
        while ((v = filterWindow(buf.subarray(offset, offset + maxSize), offset, 't', 0, byLetter())).kind === 'unchanged') {
          maxSize *= 2;
        }
        if (v.final) {
          assert.deepEqual(filterWindow(buf.subarray(offset), offset, 't', 0, byLetter()), v, 'final: a longer window answers the same');
        }
        if (v.kind === 'skip') {
          offset += v.bytes;
          continue;
        }
        for (const [i, [start, end]] of bounds.entries()) {
          if (start >= offset && end <= offset + v.bytes) got.push(input[i]!.id);
        }
        offset += v.bytes;
      }
      assert.equal(offset, buf.length);
      assert.deepEqual(got, expected, `round ${round} (seed ${seed})`);
    }
  });
});
