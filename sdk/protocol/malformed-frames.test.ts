import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCodes, ProtocolError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { DecodedRequest, GetRequest, PutRequest, Response } from './commands.js';
import { MAX_OFFSET } from './commands.js';
import { RequestDecoder } from './request-decoder.js';
import { ResponseDecoder } from './response-decoder.js';

const { PROTOCOL, FRAME_TOO_LARGE } = ErrorCodes;

interface Case {
  readonly name: string;
  readonly input: string | Buffer;
  readonly side?: 'request' | 'response';
  readonly code: ErrorCode;
  readonly fragment: string;
  readonly state?: string;
}

const cases: Case[] = [
  { name: 'an unknown command', input: 'hello world 1\r\n', code: PROTOCOL, fragment: 'Unknown command', state: 'header' },
  { name: 'an empty line', input: '\r\n', code: PROTOCOL, fragment: 'Blank command line' },
  { name: 'a line starting with a space', input: ' put t 1 5 0 0\r\nhello', code: PROTOCOL, fragment: 'Blank command line' },
  { name: 'a misspelt command with a known first letter', input: 'pat t 1 5 0 0\r\nhello', code: PROTOCOL, fragment: 'Expect put, but was "pat"' },
  { name: 'a non-numeric partition', input: 'put test x 5 0 0\r\nhello', code: PROTOCOL, fragment: 'bad number in partition', state: 'put' },
  { name: 'a non-numeric opaque', input: 'get t g 0 0 10 abc\r\n', code: PROTOCOL, fragment: 'bad number in opaque', state: 'get' },
  { name: 'a lone minus sign as a number', input: 'get t g - 0 10 1\r\n', code: PROTOCOL, fragment: 'bad number in partition' },
  { name: 'a transaction other than RECOVER with the key null', input: 'transaction null s1 BEGIN 1\r\n', code: PROTOCOL,
    fragment: 'transaction frame without a transaction key' },
  { name: 'a negative put length', input: 'put test 1 -5 0 0\r\n', code: PROTOCOL, fragment: 'negative length -5' },
  { name: 'a negative sync length', input: 'sync t 1 -1 0 9 0\r\n', code: PROTOCOL, fragment: 'negative length -1', state: 'sync' },
  { name: 'a 20-digit length', input: 'put t 1 12345678901234567890 0 0\r\n', code: PROTOCOL, fragment: 'bad number in length' },
  { name: 'a length of 2^31', input: 'put t 1 2147483648 0 0\r\n', code: PROTOCOL, fragment: 'bad number in length' },
  { name: 'an offset above Long.MAX_VALUE', input: 'get t g 0 9223372036854775808 10 1\r\n', code: PROTOCOL, fragment: 'bad number in offset' },
  { name: 'a 20-digit offset', input: 'offset t g 0 10000000000000000000 1\r\n', code: PROTOCOL, fragment: 'bad number in offset' },
  { name: 'a non-numeric msgId', input: 'sync t 1 5 0 12x 0\r\nhello', code: PROTOCOL, fragment: 'bad number in msgId' },
  { name: 'a put with 9 tokens', input: 'put a 1 5 0 -1 TX:a:1 0 9\r\n', code: PROTOCOL, fragment: 'too many tokens' },
  { name: 'a put with 5 tokens', input: 'put a 1 5 0\r\n', code: PROTOCOL, fragment: 'expected 6 to 8 tokens, got 5' },
  { name: 'a put whose 7th token is empty', input: 'put t 1 5 0  0\r\nhello', code: PROTOCOL, fragment: 'empty checksum or transaction key' },
  { name: 'a put with an illegal transaction key', input: 'put t 1 5 0 TX:a 0\r\nhello', code: PROTOCOL, fragment: 'Illegal transaction key' },
  { name: 'a get with 8 tokens', input: 'get t g 0 0 10 1 2\r\n', code: PROTOCOL, fragment: 'too many tokens: expected 7, got 8' },
  { name: 'a get with 6 tokens', input: 'get t g 0 0 10\r\n', code: PROTOCOL, fragment: 'too few tokens: expected 7, got 6' },
  { name: 'an offset with 5 tokens', input: 'offset t g 0 10\r\n', code: PROTOCOL, fragment: 'too few tokens: expected 6, got 5' },
  { name: 'a sync with 6 tokens', input: 'sync t 1 5 0 9\r\n', code: PROTOCOL, fragment: 'expected 7, 8 or 9 tokens, got 6' },
  { name: 'a sync with 10 tokens', input: 'sync t 1 5 0 9 1 0 0 1\r\nhello', code: PROTOCOL, fragment: 'too many tokens', state: 'header' },
  { name: 'a put with 10 tokens', input: 'put a 1 5 0 -1 TX:a:1 0 9 9\r\n', code: PROTOCOL, fragment: 'too many tokens' },
  { name: 'a sync with a negative offset', input: 'sync t 1 5 0 9 1 -1 0\r\nhello', code: PROTOCOL,
    fragment: 'bad number in offset: -1 is not a non-negative safe integer', state: 'sync' },
  { name: 'a sync with a non-numeric offset', input: 'sync t 1 5 0 9 1 1x 0\r\nhello', code: PROTOCOL,
    fragment: 'bad number in offset: not an int64', state: 'sync' },
  { name: 'a sync with an offset of 2^53', input: 'sync t 1 5 0 9 1 9007199254740992 0\r\nhello', code: PROTOCOL,
    fragment: 'bad number in offset: 9007199254740992 is not a non-negative safe integer' },
  { name: 'a sync with the offset Long.MAX_VALUE', input: 'sync t 1 5 0 9 1 9223372036854775807 0\r\nhello', code: PROTOCOL,
    fragment: 'bad number in offset: 9223372036854775807 is not' },
  { name: 'a sync with an empty offset', input: 'sync t 1 5 0 9 1  0\r\nhello', code: PROTOCOL, fragment: 'bad number in offset' },
  { name: 'a transaction with 4 tokens', input: 'transaction TX:s:1 s BEGIN\r\n', code: PROTOCOL, fragment: 'too few tokens: expected 5 to 7, got 4' },
  { name: 'a transaction with 8 tokens', input: 'transaction TX:s:1 s BEGIN 1 q 1 1\r\n', code: PROTOCOL, fragment: 'too many tokens: expected 5 to 7, got 8' },
  { name: 'an unknown transaction type', input: 'transaction TX:s:1 s NOPE 1\r\n', code: PROTOCOL, fragment: 'unknown transaction type "NOPE"' },
  { name: 'an illegal transaction key in a transaction', input: 'transaction XX:1 s BEGIN 1\r\n', code: PROTOCOL, fragment: 'Illegal transaction key' },
  { name: 'an empty timeout (isNumeric of "" is true, as commons-lang 2)', input: 'transaction TX:s:1 s BEGIN  1\r\n', code: PROTOCOL, fragment: 'bad number in timeout' },
  { name: 'a stats with 4 tokens', input: 'stats a 1 2\r\n', code: PROTOCOL, fragment: 'too many tokens: expected 1 to 3, got 4' },
  { name: 'a version with a non-numeric opaque', input: 'version x\r\n', code: PROTOCOL, fragment: 'bad number in opaque', state: 'version' },
  { name: 'a misspelt version', input: 'versions 1\r\n', code: PROTOCOL, fragment: 'Expect version' },
  { name: 'a quit with an argument', input: 'quit now\r\n', code: PROTOCOL, fragment: 'too many tokens' },
  { name: 'a response frame sent to the broker', input: 'result 200 0 1\r\n', code: PROTOCOL, fragment: 'Unexpected response frame "result"' },
  { name: 'a value frame sent to the broker', input: 'value 0 1\r\n', code: PROTOCOL, fragment: 'Unexpected response frame "value"' },
  { name: 'non-ASCII garbage', input: Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0d, 0x0a]), code: PROTOCOL, fragment: 'Unknown command (state header, near "\\\\xff\\\\xfe\\\\x00\\\\x80")' },
  { name: 'non-ASCII bytes in a number', input: Buffer.from('get t g \u0661 0 10 1\r\n'), code: PROTOCOL, fragment: 'bad number in partition' },
  { name: 'a header of 5000 bytes without CRLF', input: 'x'.repeat(5000), code: FRAME_TOO_LARGE, fragment: 'header line longer than 4096 bytes' },
  { name: 'a header of 5000 bytes with CRLF', input: `get ${'a'.repeat(5000)} g 0 0 1 1\r\n`, code: FRAME_TOO_LARGE, fragment: 'header line longer than 4096 bytes' },
  { name: 'a request frame sent to a client', side: 'response', input: 'put t 1 5 0 0\r\nhello', code: PROTOCOL, fragment: 'Unexpected request frame "put"' },
  { name: 'a negative result length', side: 'response', input: 'result 200 -1 1\r\n', code: PROTOCOL, fragment: 'negative length -1', state: 'result' },
  { name: 'a value with 2 tokens', side: 'response', input: 'value 5\r\nhello', code: PROTOCOL, fragment: 'too few tokens: expected 3, got 2' },
  { name: 'a result with 5 tokens', side: 'response', input: 'result 200 0 1 2\r\n', code: PROTOCOL, fragment: 'too many tokens: expected 4, got 5' },
  { name: 'a misspelt result', side: 'response', input: 'resul 200 0 1\r\n', code: PROTOCOL, fragment: 'Expect result' },
  { name: 'an unknown response', side: 'response', input: 'xyz\r\n', code: PROTOCOL, fragment: 'Unknown command' },
  { name: 'a value of 2^31-1 bytes', side: 'response', input: 'value 2147483647 1\r\n', code: FRAME_TOO_LARGE, fragment: 'exceeds maxBodyBytes' },
  { name: 'a 20-digit value length', side: 'response', input: 'value 99999999999999999999 1\r\n', code: PROTOCOL, fragment: 'bad number in length' },
  { name: 'a response header longer than 4096 bytes', side: 'response', input: `result 200 0 ${'1'.repeat(4100)}`, code: FRAME_TOO_LARGE, fragment: 'longer than 4096' },
];

function decoder(side: Case['side']): RequestDecoder | ResponseDecoder {
  return side === 'response' ? new ResponseDecoder() : new RequestDecoder();
}

function drain(d: RequestDecoder | ResponseDecoder): (DecodedRequest | Response)[] {
  const out: (DecodedRequest | Response)[] = [];
  for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  return out;
}

function assertFails(c: Case, feed: (d: RequestDecoder | ResponseDecoder) => void): void {
  const d = decoder(c.side);
  assert.throws(() => feed(d), (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.equal(e.code, c.code);
    assert.ok(e.message.includes(c.fragment), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(c.fragment)}`);
    if (c.state !== undefined) assert.equal(e.state, c.state);
    return true;
  });
}

describe('protocol/malformed frames', () => {
  for (const c of cases) {
    it(`rejects ${c.name}`, () => {
      const bytes = Buffer.from(c.input);
      assertFails(c, (d) => { d.push(bytes); drain(d); });
      assertFails(c, (d) => { for (const b of bytes) { d.push(Buffer.from([b])); drain(d); } });
    });
  }

  it('stays failed until reset(), then parses a valid frame', () => {
    const d = new RequestDecoder();
    d.push(Buffer.from('bogus\r\n'));
    assert.throws(() => d.next(), ProtocolError);
    assert.throws(() => d.next(), /Unknown command/);
    assert.throws(() => d.push(Buffer.from('quit\r\n')), /Unknown command/);
    assert.equal(d.bufferedBytes, 0);
    d.reset();
    d.push(Buffer.from('quit\r\n'));
    assert.deepEqual(d.next(), { type: 'quit' });
  });

  it('accepts a header of exactly maxLineBytes, also byte by byte, and refuses one byte more', () => {
    const line = (n: number): Buffer => {
      const head = 'get t g 0 0 1 ';
      return Buffer.from(`${head}${'1'.padStart(n - head.length, '0')}\r\n`);
    };
    const whole = new RequestDecoder({ maxLineBytes: 64 });
    whole.push(line(64));
    assert.equal((drain(whole)[0] as GetRequest).opaque, 1);
    const slow = new RequestDecoder({ maxLineBytes: 64 });
    const frames: (DecodedRequest | Response)[] = [];
    for (const b of line(64)) {
      slow.push(Buffer.from([b]));
      frames.push(...drain(slow));
      assert.ok(slow.bufferedBytes <= 64, `buffered ${slow.bufferedBytes}`);
    }
    assert.equal((frames[0] as GetRequest).opaque, 1);
    const tooLong = { name: '', input: line(65), code: FRAME_TOO_LARGE, fragment: 'longer than 64 bytes' };
    const opts = { maxLineBytes: 64 };
    assert.throws(() => { const d = new RequestDecoder(opts); d.push(line(65)); drain(d); }, /longer than 64 bytes/);
    const crThenX = Buffer.concat([line(64).subarray(0, 64), Buffer.from('\rx\r\n')]);
    assert.throws(() => {
      const d = new RequestDecoder(opts);
      for (const b of crThenX) { d.push(Buffer.from([b])); drain(d); }
    }, (e: unknown) => e instanceof ProtocolError && e.code === FRAME_TOO_LARGE);
    assertFails(tooLong, () => {
      const d = new RequestDecoder(opts);
      for (const b of line(65)) { d.push(Buffer.from([b])); drain(d); }
    });
  });

  it('answers an oversized put with an oversized frame after discarding its body, and keeps going', () => {
    const d = new RequestDecoder({ maxBodyBytes: 10 });
    const body = Buffer.alloc(50, 0x61);
    const stream = Buffer.concat([Buffer.from('put big 3 50 0 -1 9\r\n'), body, Buffer.from('put t 0 2 0 -1 10\r\nok')]);
    const frames: (DecodedRequest | Response)[] = [];
    for (const b of stream) {
      d.push(Buffer.from([b]));
      frames.push(...drain(d));
      assert.ok(d.bufferedBytes <= 4096 + 10, `buffered ${d.bufferedBytes}`);
    }
    assert.deepEqual(frames[0], { type: 'oversized', command: 'put', topic: 'big', partition: 3, length: 50, opaque: 9 });
    assert.equal((frames[1] as PutRequest).body.toString(), 'ok');
    assert.equal(frames.length, 2);
  });

  it('answers an oversized sync the same way, even when its body is in the same chunk', () => {
    const d = new RequestDecoder({ maxBodyBytes: 4 });
    d.push(Buffer.from('sync t 1 5 0 9999 777 3\r\nhelloversion 4\r\n'));
    assert.deepEqual(drain(d), [
      { type: 'oversized', command: 'sync', topic: 't', partition: 1, length: 5, opaque: 3 },
      { type: 'version', opaque: 4 },
    ]);
  });

  it('skips a 2^31-1 byte put body without buffering it', () => {
    const d = new RequestDecoder();
    d.push(Buffer.from('put t 1 2147483647 0 -1 5\r\n'));
    const chunk = Buffer.alloc(1 << 20);
    assert.equal(d.next(), undefined);
    for (let i = 0; i < 8; i++) { d.push(chunk); assert.equal(d.next(), undefined); }
    assert.equal(d.bufferedBytes, 0);
  });

  it('decodes offsets beyond 2^53 as MAX_OFFSET and accepts signs and leading zeros as Java does', () => {
    const d = new RequestDecoder();
    d.push(Buffer.from('get t g +1 9007199254740993 0010 -0\r\noffset t g 2 -9223372036854775808 -2147483648\r\n'));
    const [get, off] = drain(d) as [GetRequest, DecodedRequest];
    assert.deepEqual(get, { type: 'get', topic: 't', group: 'g', partition: 1, offset: MAX_OFFSET, maxSize: 10, opaque: 0 });
    assert.deepEqual(off, { type: 'offset', topic: 't', group: 'g', partition: 2, offset: -MAX_OFFSET, opaque: -2147483648 });
  });

  it('drops trailing empty tokens and treats "null" as no transaction key, as MetaQ does', () => {
    const d = new RequestDecoder();
    d.push(Buffer.from('version \r\nput t 1 2 0 null 7  \r\nhi'));
    const [v, put] = drain(d) as [DecodedRequest, PutRequest];
    assert.deepEqual(v, { type: 'version', opaque: 2147483647 });
    assert.equal(put.transactionKey, null);
    assert.equal(put.checksum, -1);
    assert.equal(put.opaque, 7);
  });
});
