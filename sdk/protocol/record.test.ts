import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CorruptRecordError } from '../errors.js';
import { loadRecordFixtures } from './frame-fixtures.test-helper.js';
import {
  FLAG_ATTRIBUTE, RecordCheck, checkRecord, crc32Masked, decodeMessageSet, decodePayload, encodePayload, encodeRecord,
} from './record.js';

const records = loadRecordFixtures();
const fixture = (name: string): Buffer => records.find((r) => r.name === name)!.bytes;

describe('protocol/record', () => {
  it('masks CRC32 to 31 bits as MetaQ does (CRC32("hello") = 907060870)', () => {
    assert.equal(crc32Masked(Buffer.from('hello')), 907060870);
  });

  for (const r of records) {
    it(`checks the ${r.name} record of ${r.source}`, () => {
      const want = typeof r.expect.check === 'number' ? r.expect.check : RecordCheck[r.expect.check];
      assert.equal(checkRecord(r.bytes, 0, r.bytes.length, 2 * 1024 * 1024), want);
    });
  }

  it('encodes the 25-byte record of testNext_NoAttribute byte for byte', () => {
    assert.deepEqual(encodeRecord(9999n, 0, Buffer.from('hello')), fixture('no-attribute'));
  });

  it('encodes the 38-byte record of testNext_HasAttribute byte for byte', () => {
    const { data, flag } = encodePayload(Buffer.from('hello'), 'attribute');
    assert.equal(flag, FLAG_ATTRIBUTE);
    assert.deepEqual(encodeRecord(9999n, flag, data), fixture('has-attribute'));
  });

  it('sets the attribute flag even for an empty attribute, and not for none', () => {
    const empty = encodePayload(Buffer.from('x'), '');
    assert.equal(empty.flag & FLAG_ATTRIBUTE, FLAG_ATTRIBUTE);
    assert.deepEqual(empty.data, Buffer.from([0, 0, 0, 0, 0x78]));
    assert.deepEqual(decodePayload(empty.data, empty.flag), { attribute: '', payload: Buffer.from('x') });
    assert.equal(encodePayload(Buffer.from('x')).flag & FLAG_ATTRIBUTE, 0);
  });

  it('decodes the record fixtures as a message set with their offsets', () => {
    for (const r of records.filter((x) => typeof x.expect.check === 'number')) {
      const set = decodeMessageSet(r.bytes, { baseOffset: 1000 });
      assert.equal(set.messages.length, 1, r.name);
      const m = set.messages[0]!;
      assert.equal(m.id, BigInt(r.expect.id!));
      assert.equal(m.flag, r.expect.flag);
      assert.equal(m.attribute, r.expect.attribute);
      assert.equal(m.payload.toString(), r.expect.payload);
      assert.equal(m.offset, 1000);
      assert.equal(m.nextOffset, 1000 + r.expect.nextOffset!);
      assert.equal(set.bytesConsumed, r.bytes.length);
    }
  });

  it('stops at an incomplete header or incomplete data without error (a cut fetch window)', () => {
    const whole = fixture('no-attribute');
    for (const cut of [fixture('incomplete-header'), fixture('incomplete-data')]) {
      const set = decodeMessageSet(Buffer.concat([whole, cut]), { baseOffset: 0 });
      assert.equal(set.messages.length, 1);
      assert.equal(set.bytesConsumed, 25);
      assert.equal(set.truncatedTail, true);
    }
  });

  it('raises CorruptRecordError for a checksum that does not match the data', () => {
    assert.throws(() => decodeMessageSet(fixture('wrong-crc'), { baseOffset: 50, topic: 't', partition: 2 }),
      (e: unknown) => e instanceof CorruptRecordError && e.offset === 50 && /checksum mismatch/.test(e.message));
  });

  it('refuses a length above the maximum message size', () => {
    const r = Buffer.from(fixture('no-attribute'));
    r.writeInt32BE(2 * 1024 * 1024 + 1, 0);
    assert.equal(checkRecord(r, 0, r.length, 2 * 1024 * 1024), RecordCheck.BAD_LENGTH);
  });
});
