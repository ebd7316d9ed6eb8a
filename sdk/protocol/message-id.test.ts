import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, ProtocolError } from '../errors.js';
import { formatMessageId, formatPutResult, parseMessageId, parsePutResult } from './message-id.js';

describe('protocol/message-id', () => {
  it('round-trips ids across the whole int64 range without losing precision', () => {
    for (const id of [0n, 9999n, 9007199254740993n, (1n << 63n) - 1n, -(1n << 63n), -1n]) {
      assert.equal(parseMessageId(formatMessageId(id)), id);
    }
  });

  it('refuses garbage and out-of-range ids', () => {
    for (const text of ['', '-', '12a', ' 1', '1.0', '9223372036854775808', '+1', '0x10', '12345678901234567890']) {
      assert.throws(() => parseMessageId(text), InvalidArgumentError, text);
    }
    assert.throws(() => formatMessageId(1n << 63n), InvalidArgumentError);
  });

  it('parses and formats the put result body', () => {
    const r = parsePutResult(Buffer.from('7038352640897024 3 1024'));
    assert.deepEqual(r, { id: 7038352640897024n, partition: 3, offset: 1024 });
    assert.equal(formatPutResult(r), '7038352640897024 3 1024');
    assert.deepEqual(parsePutResult('9223372036854775807 0 -1'), { id: (1n << 63n) - 1n, partition: 0, offset: -1 });
  });

  it('refuses a malformed put result with a ProtocolError', () => {
    for (const text of ['', '1 2', '1 2 3 4', '1  2 3', 'a 1 2', '1 2 -2', '1 2147483648 0', '1 2 99999999999999999']) {
      assert.throws(() => parsePutResult(text), ProtocolError, text);
    }
    assert.throws(() => formatPutResult({ id: 1n, partition: 0.5, offset: 0 }), InvalidArgumentError);
  });

  it('reads a Buffer in place exactly as the checked path reads the same text', () => {
    for (const text of ['0 0 0', '7 3 1024', '123456789 1 2', '1234567890 1 2', '7038352640897024 3 1024',
      '9223372036854775807 0 9007199254740991', '999999999999999999 12 55', '2060881541659099136 2147483647 7']) {
      assert.deepEqual(parsePutResult(Buffer.from(text)), parsePutResult(text), text);
    }
  });

  it('hands odd Buffer shapes to the checked path, which accepts -1 offsets and explains garbage', () => {
    assert.equal(parsePutResult(Buffer.from('5 0 -1')).offset, -1);
    for (const bad of ['', 'hello', '1 2', '1  2 3', '1 2 3x', 'a 2 3', '9223372036854775808 0 0']) {
      assert.throws(() => parsePutResult(Buffer.from(bad)), ProtocolError, bad);
    }
  });
});
