import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DecodedRequest, PutRequest, Response, SyncRequest } from './commands.js';
import { encodePut, encodeRequest, encodeResponse, encodeSync, encodeValueHeader } from './encode.js';
import { loadFrameFixtures } from './frame-fixtures.test-helper.js';
import type { FrameFixture } from './frame-fixtures.test-helper.js';
import { RequestDecoder } from './request-decoder.js';
import { ResponseDecoder } from './response-decoder.js';

type Frame = DecodedRequest | Response;
const fixtures = loadFrameFixtures();

function decoderFor(f: FrameFixture): RequestDecoder | ResponseDecoder {
  return f.direction === 'request' ? new RequestDecoder() : new ResponseDecoder();
}

/** Pushes each chunk and drains after every push; returns all frames and the bytes left buffered. */
function decodeChunks(decoder: RequestDecoder | ResponseDecoder, chunks: Buffer[]): { frames: Frame[]; left: number } {
  const frames: Frame[] = [];
  for (const c of chunks) {
    decoder.push(c);
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
  }
  return { frames, left: decoder.bufferedBytes };
}

function bytewise(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) out.push(Buffer.from(buf.subarray(i, i + 1)));
  return out;
}

function expected(f: FrameFixture): Frame[] {
  return f.decoded === null ? [] : [f.decoded];
}

describe('protocol/golden frames', () => {
  it('has a fixture for every example of reference §1.6 items 1-10', () => {
    const sources = new Set(fixtures.map((f) => /§1\.6\.(\d+)/.exec(f.source)?.[1]).filter((s) => s !== undefined));
    assert.deepEqual([...sources].map(Number).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  for (const f of fixtures) {
    describe(`${f.name} (${f.source})`, () => {
      it('decodes from one buffer', () => {
        const { frames } = decodeChunks(decoderFor(f), [f.bytes]);
        assert.deepEqual(frames, expected(f));
      });

      it('decodes the same when the bytes arrive one at a time', () => {
        const { frames } = decodeChunks(decoderFor(f), bytewise(f.bytes));
        assert.deepEqual(frames, expected(f));
      });

      it('decodes the same when split at every boundary', () => {
        for (let i = 1; i < f.bytes.length; i++) {
          const { frames } = decodeChunks(decoderFor(f), [f.bytes.subarray(0, i), f.bytes.subarray(i)]);
          assert.deepEqual(frames, expected(f), `split at ${i}`);
        }
      });

      if (f.encodes === 'yes') {
        it('encodes back to exactly these bytes', () => {
          const d = f.decoded!;
          const bytes = f.direction === 'request' ? encodeRequest(d as never) : encodeResponse(d as Response);
          assert.equal(bytes.toString('hex'), f.bytes.toString('hex'));
        });
      }
      if (f.encodes === 'legacy') {
        it('encodes back to exactly these bytes in the legacy form', () => {
          const d = f.decoded as PutRequest | SyncRequest;
          const bytes = d.type === 'put' ? encodePut(d, { legacy: true }) : encodeSync(d, { legacy: true });
          assert.equal(bytes.toString('hex'), f.bytes.toString('hex'));
        });
      }
    });
  }

  it('decodes a pipelined stream of every complete request, byte at a time and whole', () => {
    const reqs = fixtures.filter((f) => f.direction === 'request' && f.decoded !== null);
    const stream = Buffer.concat(reqs.map((f) => f.bytes));
    const want = reqs.map((f) => f.decoded);
    assert.deepEqual(decodeChunks(new RequestDecoder(), [stream]).frames, want);
    const slow = decodeChunks(new RequestDecoder(), bytewise(stream));
    assert.deepEqual(slow.frames, want);
    assert.equal(slow.left, 0);
  });

  it('decodes a pipelined stream of every complete response', () => {
    const res = fixtures.filter((f) => f.direction === 'response' && f.decoded !== null);
    const stream = Buffer.concat(res.map((f) => f.bytes));
    assert.deepEqual(decodeChunks(new ResponseDecoder(), bytewise(stream)).frames, res.map((f) => f.decoded));
  });

  it('encodes the value header of FileMessageSetUnitTest.testMakeHead and decodes it with its 100 bytes', () => {
    const f = fixtures.find((x) => x.name === 'value-header')!;
    assert.equal(encodeValueHeader(100, -1999).toString('hex'), f.bytes.toString('hex'));
    const body = Buffer.alloc(100, 7);
    const { frames } = decodeChunks(new ResponseDecoder(), [f.bytes, body.subarray(0, 40), body.subarray(40)]);
    assert.deepEqual(frames, [{ type: 'value', opaque: -1999, body }]);
  });

  it('waits on a partial put body, holding exactly the body buffer, then completes it', () => {
    const f = fixtures.find((x) => x.name === 'put-partial-body')!;
    const d = new RequestDecoder();
    d.push(f.bytes);
    assert.equal(d.next(), undefined);
    assert.equal(d.bufferedBytes, 5);
    d.push(Buffer.from('lo'));
    const put = d.next() as PutRequest;
    assert.equal(put.body.toString(), 'hello');
    assert.equal(put.opaque, 10);
    assert.equal(put.checksum, -1);
    assert.equal(d.bufferedBytes, 0);
  });

  it('returns a body lying whole in the pushed chunk as a view of it (no copy)', () => {
    const chunk = Buffer.from('put test 1 5 0 -1 0\r\nhello');
    const d = new RequestDecoder();
    d.push(chunk);
    const put = d.next() as PutRequest;
    assert.equal(put.body.buffer, chunk.buffer);
  });
});
