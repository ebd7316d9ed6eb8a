import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../errors.js';
import { parsePutResult } from '../protocol/message-id.js';
import { parseAck } from './put-ack.js';

describe('sdk/producer/put-ack', () => {
  it('reads ids and offsets exactly, as parsePutResult does', () => {
    for (const text of ['0 0 0', '7 3 1024', '123456789 1 2', '1234567890 1 2', '7038352640897024 3 1024',
      '9223372036854775807 0 9007199254740991', '999999999999999999 12 55']) {
      const expected = parsePutResult(text);
      const actual = parseAck(Buffer.from(text));
      assert.equal(actual.id, expected.id, text);
      assert.equal(actual.offset, expected.offset, text);
    }
  });

  it('hands odd shapes to parsePutResult, which accepts -1 offsets and explains garbage', () => {
    assert.equal(parseAck(Buffer.from('5 0 -1')).offset, -1);
    for (const bad of ['', 'hello', '1 2', '1  2 3', '1 2 3x', 'a 2 3']) {
      assert.throws(() => parseAck(Buffer.from(bad)), ProtocolError, bad);
    }
  });
});
