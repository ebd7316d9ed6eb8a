import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { encodePut } from './encode.js';
import { crc32Masked, encodePayload } from './record.js';
import { encodePutFrame, putPrefix } from './put-frame.js';

describe('sdk/protocol/put-frame', () => {
  it('writes MetaQ 1.4.4 put frames', () => {
    assert.equal(encodePutFrame(putPrefix('test'), 1, 0, 907060870, 0, Buffer.from('hello')).toString(),
      'put test 1 5 0 907060870 0\r\nhello');
  });

  it('is byte-identical to encodePut over a table of frames', () => {
    const cases = [
      { topic: 'a', partition: 0, flag: 0, opaque: 1, body: Buffer.alloc(0) },
      { topic: 'orders.eu-1', partition: 1023, flag: 1, opaque: 2147483647, body: Buffer.from('x'.repeat(5000)) },
      { topic: 'T_9', partition: 9, flag: 0x10001, opaque: 10, body: encodePayload(Buffer.from('payload'), 'attr').data },
      { topic: 'neg', partition: 7, flag: -1, opaque: 99999, body: Buffer.from([0, 255, 13, 10]) },
    ];
    for (const c of cases) {
      const checksum = crc32Masked(c.body);
      const expected = encodePut({ ...c, checksum });
      const actual = encodePutFrame(putPrefix(c.topic), c.partition, c.flag, checksum, c.opaque, c.body);
      assert.deepEqual(actual, expected, c.topic);
    }
  });

  it('refuses topic names the protocol does not accept', () => {
    for (const bad of ['', 'a b', '../etc', '.hidden', 'x\r\n']) assert.throws(() => putPrefix(bad), InvalidArgumentError, bad);
  });
});
