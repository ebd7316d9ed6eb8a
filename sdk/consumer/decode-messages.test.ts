import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CompressionTypes, flagWithCompression } from '../codec/compression.js';
import { CorruptRecordError } from '../errors.js';
import type { Partition } from '../message.js';
import { crc32Masked, encodePayload, encodeRecord, RECORD_HEADER_SIZE } from '../protocol/record.js';
import { decodeMessages, decodeMessagesSync, type DecodeMessagesOptions } from './decode-messages.js';

const partition: Partition = { brokerId: 0, partition: 2 };
const asText = (payload: Buffer): string => payload.toString('utf8');
const opts = (baseOffset = 0, maxMessageSize?: number): DecodeMessagesOptions<string> =>
  ({ topic: 't', partition, baseOffset, deserializer: asText, ...(maxMessageSize === undefined ? {} : { maxMessageSize }) });

function record(id: bigint, payload: string | Buffer, attribute: string | null = null, extraFlags = 0): Buffer {
  const { data, flag } = encodePayload(Buffer.from(payload), attribute, extraFlags);
  return encodeRecord(id, flag, data);
}

describe('consumer/decode-messages', () => {
  it('decodes plain records with their ids, offsets and values', async () => {
    const set = Buffer.concat([record(9999n, 'hello'), record(10_000n, 'world')]);
    const r = await decodeMessages(set, opts(1000));
    assert.equal(r.messages.length, 2);
    assert.equal(r.bytesConsumed, set.length);
    assert.equal(r.truncatedTail, false);
    assert.equal(r.nextRecordSize, undefined);
    const [a, b] = r.messages;
    assert.equal(a?.id, 9999n);
    assert.equal(a?.offset, 1000);
    assert.equal(a?.nextOffset, 1025);
    assert.equal(a?.value, 'hello');
    assert.equal(a?.attribute, null);
    assert.equal(a?.topic, 't');
    assert.deepEqual(a?.partition, partition);
    assert.equal(a?.redeliveries, 0);
    assert.equal(b?.offset, 1025);
    assert.equal(b?.payload.toString(), 'world');
  });

  it('splits the attribute from the payload, including an empty attribute', () => {
    const set = Buffer.concat([record(1n, 'hello', 'attribute'), record(2n, 'x', ''), record(3n, '', 'only-attr')]);
    const r = decodeMessagesSync(set, opts());
    assert.ok(r !== undefined);
    assert.deepEqual(r.messages.map((m) => [m.attribute, m.value, m.flag]),
      [['attribute', 'hello', 1], ['', 'x', 1], ['only-attr', '', 1]]);
    assert.equal(r.messages[0]?.nextOffset, 38, 'the 38-byte record of MetaQ\'s MessageIteratorUnitTest');
  });

  it('views payloads in the fetched buffer without copying', () => {
    const set = record(1n, 'hello');
    const m = decodeMessagesSync(set, opts())?.messages[0];
    assert.ok(m !== undefined);
    assert.equal(m.payload.buffer, set.buffer);
    assert.equal(m.payload, m.payload, 'the view is made once');
  });

  it('deserializes on first access only, once', () => {
    let calls = 0;
    const r = decodeMessagesSync(Buffer.concat([record(1n, 'a'), record(2n, 'b')]),
      { topic: 't', partition, baseOffset: 0, deserializer: (p) => { calls++; return p.toString(); } });
    assert.equal(calls, 0);
    assert.equal(r?.messages[1]?.value, 'b');
    assert.equal(r?.messages[1]?.value, 'b');
    assert.equal(calls, 1);
  });

  it('keeps ids above 2^53 exact', () => {
    const id = (1n << 62n) + 12345n;
    assert.equal(decodeMessagesSync(record(id, 'x'), opts())?.messages[0]?.id, id);
  });

  it('decompresses compressed payloads and leaves the attribute plain', async () => {
    const text = 'compressible '.repeat(50);
    const flag = flagWithCompression(0, CompressionTypes.GZIP);
    const set = Buffer.concat([record(1n, 'plain'), record(2n, gzipSync(text), 'attr', flag), record(3n, 'after')]);
    assert.equal(decodeMessagesSync(set, opts()), undefined, 'the sync decoder hands compressed sets to the async one');
    const r = await decodeMessages(set, opts());
    assert.deepEqual(r.messages.map((m) => m.value), ['plain', text, 'after']);
    assert.equal(r.messages[1]?.attribute, 'attr');
    assert.equal(r.bytesConsumed, set.length);
  });

  it('stops at a cut tail and reports the full size of the cut record', () => {
    const whole = record(1n, 'hello');
    const big = record(2n, Buffer.alloc(5000, 7));
    const set = Buffer.concat([whole, big]);
    for (const cut of [whole.length + 4, whole.length + RECORD_HEADER_SIZE, set.length - 1]) {
      const r = decodeMessagesSync(set.subarray(0, cut), opts(500));
      assert.ok(r !== undefined);
      assert.equal(r.messages.length, 1, `cut at ${cut}`);
      assert.equal(r.bytesConsumed, whole.length);
      assert.equal(r.truncatedTail, true);
      assert.equal(r.nextRecordSize, big.length, `cut at ${cut}`);
    }
  });

  it('gives no record size when fewer than 4 bytes of the cut record arrived', () => {
    const set = Buffer.concat([record(1n, 'hello'), Buffer.from([0, 0, 1])]);
    const r = decodeMessagesSync(set, opts());
    assert.equal(r?.truncatedTail, true);
    assert.equal(r?.nextRecordSize, undefined);
    assert.equal(decodeMessagesSync(Buffer.alloc(0), opts())?.truncatedTail, false);
  });

  it('reports a first record larger than the whole window so the fetch can grow', () => {
    const big = record(1n, Buffer.alloc(100_000, 1));
    const r = decodeMessagesSync(big.subarray(0, 1024), opts());
    assert.equal(r?.messages.length, 0);
    assert.equal(r?.bytesConsumed, 0);
    assert.equal(r?.nextRecordSize, big.length);
  });

  it('refuses a record whose checksum does not match, at every bit of its DATA', () => {
    const good = record(1n, 'first');
    const victim = record(7n, 'x'.repeat(300), 'attr');
    for (let bit = 0; bit < (victim.length - RECORD_HEADER_SIZE) * 8; bit += 37) {
      const damaged = Buffer.concat([good, victim]);
      damaged[good.length + RECORD_HEADER_SIZE + (bit >> 3)]! ^= 1 << (bit & 7);
      assert.throws(() => decodeMessagesSync(damaged, opts(100)), (e: unknown) =>
        e instanceof CorruptRecordError && e.offset === 100 + good.length && /checksum/.test(e.message));
    }
  });

  it('refuses a length above the limit or below zero', async () => {
    const r = record(1n, 'x'.repeat(100));
    await assert.rejects(decodeMessages(r, opts(0, 50)), /invalid length 100/);
    const negative = Buffer.from(r);
    negative.writeInt32BE(-5, 0);
    assert.throws(() => decodeMessagesSync(negative, opts()), CorruptRecordError);
  });

  it('refuses an attribute length that does not fit its DATA, even with a valid checksum', () => {
    const data = Buffer.alloc(8);
    data.writeInt32BE(100, 0);
    const rec = Buffer.alloc(RECORD_HEADER_SIZE + data.length);
    rec.writeInt32BE(data.length, 0);
    rec.writeInt32BE(crc32Masked(data), 4);
    rec.writeInt32BE(1, 16);
    data.copy(rec, RECORD_HEADER_SIZE);
    assert.throws(() => decodeMessagesSync(rec, opts()), /attribute length 100/);
  });

  it('agrees with zlib on checksums of every size around the JS/zlib switch', () => {
    for (let size = 0; size < 600; size += 13) {
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 31 + size) & 0xff;
      const m = decodeMessagesSync(record(BigInt(size), payload), opts())?.messages[0];
      assert.ok(m !== undefined, `size ${size}`);
      assert.deepEqual(m.payload, payload);
    }
  });
});
