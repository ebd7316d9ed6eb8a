import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../errors.js';
import { entryKey, formatOffsetFile, parseOffsetFile } from './offset-file.js';

// MetaQ's test resource oldVersion_meta_offsets, byte for byte.
const METAQ_OLD_VERSION = '{"test-grp":[{"offset":0,"partition":{"partition":0,"brokerId":100,"acked":false,' +
  '"rollback":true,"autoAck":false},"topic":"test-topic"},{"offset":130835445,"partition":{"partition":0,' +
  '"brokerId":101},"topic":"test-topic"}]}';

describe('offsets/offset-file', () => {
  it("loads MetaQ's oldVersion_meta_offsets file, ignoring the partition's transient fields", () => {
    const map = parseOffsetFile(METAQ_OLD_VERSION, 'meta_offsets');
    const g = map.get('test-grp');
    assert.ok(g);
    assert.deepEqual(g.get(entryKey('test-topic', { brokerId: 100, partition: 0 })),
      { topic: 'test-topic', partition: { brokerId: 100, partition: 0 }, offset: 0, msgId: -1n });
    assert.equal(g.get(entryKey('test-topic', { brokerId: 101, partition: 0 }))?.offset, 130835445);
  });

  it("reads MetaQ 1.4's numeric messageId exactly, beyond 2^53", () => {
    const text = '{"g":[{"topic":"t","partition":{"brokerId":1,"partition":2},"offset":5,' +
      '"messageId" : 9223372036854775807,"modified":false}]}';
    const e = parseOffsetFile(text, 'f').get('g')?.get(entryKey('t', { brokerId: 1, partition: 2 }));
    assert.equal(e?.msgId, 9223372036854775807n);
  });

  it('does not rewrite a messageId-looking text inside a string', () => {
    const text = '{"g":[{"topic":"x\\"messageId\\":1","partition":{"brokerId":0,"partition":0},"offset":1}]}';
    const map = parseOffsetFile(text, 'f');
    assert.ok(map.get('g')?.has(entryKey('x"messageId":1', { brokerId: 0, partition: 0 })));
  });

  it('writes msgId as a decimal string and nothing MetaQ would not read', () => {
    const map = new Map([['g', new Map([['k', {
      topic: 't', partition: { brokerId: 3, partition: 1 }, offset: 10, msgId: 1234567890123456789n }]])]]);
    const text = formatOffsetFile(map);
    assert.equal(text,
      '{"g":[{"offset":10,"partition":{"partition":1,"brokerId":3},"topic":"t","msgId":"1234567890123456789"}]}');
    assert.deepEqual(parseOffsetFile(text, 'f').get('g')?.get(entryKey('t', { brokerId: 3, partition: 1 }))?.msgId,
      1234567890123456789n);
  });

  it('reads an empty file (as MetaQ creates on first use) and a null group as no offsets', () => {
    assert.equal(parseOffsetFile('', 'f').size, 0);
    assert.equal(parseOffsetFile(' \n', 'f').size, 0);
    assert.equal(parseOffsetFile('{"g":null}', 'f').size, 0);
  });

  const malformed: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['a torn write', '{"g":[{"offset":1,"partition":{"partit', /not valid JSON/],
    ['a top-level list', '[]', /top level/],
    ['a group that is not a list', '{"g":{}}', /group "g" is not a list/],
    ['an entry that is not an object', '{"g":[1]}', /entry 0 of group "g" is not an object/],
    ['a missing topic', '{"g":[{"offset":1,"partition":{"partition":0,"brokerId":0}}]}', /no topic/],
    ['a missing partition', '{"g":[{"offset":1,"topic":"t"}]}', /no partition/],
    ['a negative partition', '{"g":[{"offset":1,"topic":"t","partition":{"partition":-1,"brokerId":0}}]}',
      /bad partition/],
    ['a fractional offset', '{"g":[{"offset":1.5,"topic":"t","partition":{"partition":0,"brokerId":0}}]}',
      /bad offset/],
    ['a negative offset', '{"g":[{"offset":-3,"topic":"t","partition":{"partition":0,"brokerId":0}}]}',
      /bad offset/],
    ['a msgId that is no integer', '{"g":[{"offset":1,"topic":"t","partition":{"partition":0,"brokerId":0},' +
      '"msgId":"12a"}]}', /bad msgId/],
  ];
  for (const [what, text, reason] of malformed) {
    it(`refuses ${what} with a ConfigError naming the file`, () => {
      assert.throws(() => parseOffsetFile(text, '/data/offsets.json'), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /offsets file \/data\/offsets\.json/);
        assert.match(e.message, reason);
        assert.match(e.message, /NOT reset/);
        return true;
      });
    });
  }

  it('accepts a quoted offset as MetaQ does', () => {
    const map = parseOffsetFile('{"g":[{"offset":"42","topic":"t","partition":{"partition":0,"brokerId":0}}]}', 'f');
    assert.equal(map.get('g')?.get(entryKey('t', { brokerId: 0, partition: 0 }))?.offset, 42);
  });
});
