/**
 * Decodes the responses a client receives, incrementally (bytes may arrive one at a time).
 *
 * ```
 * result <code> <len> <opaque>\r\n<len bytes: UTF-8 text>      4 tokens
 * value <len> <opaque>\r\n<len bytes: a message set>           3 tokens
 * ```
 * Dispatch is on the first byte (`r`, `v`) as MetaQ; a request frame here is a protocol error. A body longer
 * than `maxBodyBytes` is a framing error (FRAME_TOO_LARGE): the caller should raise its fetch limit instead.
 *
 * @example
 * ```ts
 * const decoder = new ResponseDecoder({ maxBodyBytes: 4 * 1024 * 1024 });
 * decoder.push(chunk);
 * for (let res = decoder.next(); res !== undefined; res = decoder.next()) pending.get(res.opaque)?.resolve(res);
 * ```
 * @see RequestDecoder
 */
import { ErrorCodes } from '../errors.js';
import type { Response } from './commands.js';
import { FrameDecoder } from './frame-decoder.js';
import type { DecoderOptions } from './frame-decoder.js';

export type { DecoderOptions } from './frame-decoder.js';

const RESULT = Buffer.from('result', 'latin1');
const VALUE = Buffer.from('value', 'latin1');

export class ResponseDecoder extends FrameDecoder<Response> {
  private isValue = false;
  private code = 0;
  private opaque = 0;

  constructor(opts?: DecoderOptions) {
    super(opts);
  }

  protected decodeLine(buf: Buffer, start: number, end: number): null {
    const t = this.tokens;
    if (!t.split(buf, start, end)) this.fail('too many tokens');
    if (t.length(0) === 0) this.fail('Blank command line');
    const first = buf[t.start(0)];
    if (first === 0x72) {                                     // r
      this.command = 'result';
      if (!t.equals(0, RESULT)) this.fail(`Expect result, but was ${JSON.stringify(t.text(0))}`);
      this.count(4);
      this.isValue = false;
      this.code = this.int32(1, 'code');
      this.bodyLength = this.length(2);
      this.opaque = this.int32(3, 'opaque');
    } else if (first === 0x76 && t.equals(0, VALUE)) {        // v
      this.command = 'value';
      this.count(3);
      this.isValue = true;
      this.bodyLength = this.length(1);
      this.opaque = this.int32(2, 'opaque');
    } else if (first !== undefined && 'pgtsovq'.includes(String.fromCharCode(first))) {
      this.fail(`Unexpected request frame ${JSON.stringify(t.text(0))} on a response stream`);
    } else {
      this.fail('Unknown command');
    }
    if (this.bodyLength > this.maxBodyBytes) {
      this.fail(`body of ${this.bodyLength} bytes exceeds maxBodyBytes ${this.maxBodyBytes}`,
        ErrorCodes.FRAME_TOO_LARGE);
    }
    return null;
  }

  protected complete(body: Buffer | null): Response {
    // Never null: oversized bodies fail in decodeLine.
    const b = body ?? Buffer.alloc(0);
    if (this.isValue) return { type: 'value', opaque: this.opaque, body: b };
    return { type: 'result', code: this.code, opaque: this.opaque, body: b };
  }

  private count(n: number): void {
    const c = this.tokens.count;
    if (c < n) this.fail(`too few tokens: expected ${n}, got ${c}`);
    if (c > n) this.fail(`too many tokens: expected ${n}, got ${c}`);
  }

  private int32(i: number, what: string): number {
    const v = this.tokens.int32(i);
    if (Number.isNaN(v)) this.fail(`bad number in ${what}: not an int32`);
    return v;
  }

  private length(i: number): number {
    const v = this.int32(i, 'length');
    if (v < 0) this.fail(`negative length ${v}`);
    return v;
  }
}
