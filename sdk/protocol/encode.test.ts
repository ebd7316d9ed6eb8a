import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { MAX_OFFSET } from './commands.js';
import {
  encodeGet, encodePut, encodeQuit, encodeResult, encodeStats, encodeSync, encodeTransaction, encodeValue,
  encodeValueHeader, encodeVersion,
} from './encode.js';
import { RequestDecoder } from './request-decoder.js';

const text = (b: Buffer): string => b.toString('utf8');

describe('protocol/encode', () => {
  it('announces byte lengths, not character lengths', () => {
    assert.equal(text(encodePut({ topic: 't', partition: 0, flag: 0, opaque: 1, body: Buffer.from('é') })),
      'put t 0 2 0 -1 1\r\né');
    assert.equal(text(encodeResult(500, 'ü', 3)), 'result 500 2 3\r\nü');
  });

  it('writes MAX_OFFSET as Long.MAX_VALUE, its meaning on the wire', () => {
    assert.equal(text(encodeGet({ topic: 't', group: 'g', partition: 0, offset: MAX_OFFSET, maxSize: 1, opaque: 1 })),
      'get t g 0 9223372036854775807 1 1\r\n');
  });

  it('writes an all-digit unique qualifier with an explicit timeout 0 so it is not read back as a timeout', () => {
    const b = encodeTransaction({ transactionKey: 'TX:s:1', sessionId: 's', transactionType: 'BEGIN', uniqueQualifier: '123', opaque: 5 });
    assert.equal(text(b), 'transaction TX:s:1 s BEGIN 0 123 5\r\n');
    const d = new RequestDecoder();
    d.push(b);
    assert.deepEqual(d.next(), {
      type: 'transaction', transactionKey: 'TX:s:1', sessionId: 's', transactionType: 'BEGIN', timeout: 0,
      uniqueQualifier: '123', opaque: 5,
    });
  });

  it('writes a blank stats item as two spaces', () => {
    assert.equal(text(encodeStats({ item: ' ', opaque: 1 })), 'stats  1\r\n');
  });

  it('writes sync, version, quit, value and the value header', () => {
    assert.equal(text(encodeSync({ topic: 't', partition: 1, flag: 0, msgId: 9007199254740993n, opaque: 2, body: Buffer.from('x') })),
      'sync t 1 1 0 9007199254740993 -1 2\r\nx');
    assert.equal(text(encodeSync({ topic: 't', partition: 1, flag: 0, msgId: 5n, checksum: 3, offset: 0, opaque: 2, body: Buffer.from('x') })),
      'sync t 1 1 0 5 3 0 2\r\nx');
    assert.equal(text(encodeSync({ topic: 't', partition: 1, flag: 0, msgId: 5n, checksum: 3, offset: null, opaque: 2, body: Buffer.from('x') })),
      'sync t 1 1 0 5 3 2\r\nx');
    assert.equal(text(encodeSync({ topic: 't', partition: 1, flag: 0, msgId: 5n, checksum: 3, opaque: 2, body: Buffer.from('x') },
      { legacy: true })), 'sync t 1 1 0 5 2\r\nx');
    assert.equal(text(encodeVersion(7)), 'version 7\r\n');
    assert.equal(text(encodeQuit()), 'quit\r\n');
    assert.equal(text(encodeValue(Buffer.from('ab'), 4)), 'value 2 4\r\nab');
    assert.equal(text(encodeValueHeader(0, 4)), 'value 0 4\r\n');
  });

  it('refuses tokens that would re-frame the stream and numbers out of range', () => {
    const put = { partition: 0, flag: 0, opaque: 1, body: Buffer.alloc(0) };
    for (const topic of ['', 'a b', 'a\r\n', 'a\nb']) {
      assert.throws(() => encodePut({ ...put, topic }), InvalidArgumentError, JSON.stringify(topic));
    }
    assert.throws(() => encodePut({ ...put, topic: 't', partition: 2 ** 31 }), /partition 2147483648 is not an int32/);
    assert.throws(() => encodePut({ ...put, topic: 't', opaque: 1.5 }), /opaque 1.5/);
    assert.throws(() => encodeGet({ topic: 't', group: 'g', partition: 0, offset: 2 ** 60, maxSize: 1, opaque: 1 }), /offset/);
    assert.throws(() => encodeSync({ topic: 't', partition: 0, flag: 0, msgId: 1n << 63n, opaque: 1, body: Buffer.alloc(0) }), /int64/);
    const sync = { topic: 't', partition: 0, flag: 0, msgId: 1n, opaque: 1, body: Buffer.alloc(0) };
    for (const offset of [-1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER]) {
      assert.throws(() => encodeSync({ ...sync, offset }), new RegExp(`sync offset ${offset} is not a non-negative safe integer`));
    }
    assert.throws(() => encodeSync({ ...sync, offset: 1 }, { legacy: true }), /legacy sync form cannot carry an offset/);
    assert.throws(() => encodeValueHeader(-1, 1), /non-negative/);
  });
});
