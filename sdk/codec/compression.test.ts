import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterEach, describe, it } from 'node:test';
import { ErrorCodes, MetaqError, UnsupportedCompressionError } from '../errors.js';
import { decodePayload, encodePayload } from '../protocol/record.js';
import {
  CompressionCodecs, CompressionTypes, compressPayload, compressionOfFlag, decompressPayload, flagWithCompression, lookupCodec,
  type Codec, type CodecFactory,
} from './compression.js';

const require = createRequire(import.meta.url);
const SnappyCodec = require('kafkajs-snappy') as CodecFactory;
const kafkajs = require('kafkajs') as { CompressionCodecs: Record<number, () => Codec> };

const original = { ...CompressionCodecs };
afterEach(() => {
  for (const key of Object.keys(CompressionCodecs)) delete CompressionCodecs[Number(key) as 2];
  Object.assign(CompressionCodecs, original);
});

const text = Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(200), 'utf8');
const samples: [string, Buffer][] = [
  ['an empty payload', Buffer.alloc(0)],
  ['one byte', Buffer.from([7])],
  ['repetitive text', text],
  ['1 MiB of random bytes', randomBytes(1024 * 1024)],
];

async function rejectsWith(p: Promise<unknown>, check: (e: MetaqError) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MetaqError, `expected a MetaqError, got ${String(e)}`);
    check(e);
    return true;
  });
}

describe('codec/compression', () => {
  it('round-trips every sample through the built-in GZIP codec', async () => {
    for (const [name, payload] of samples) {
      const packed = await compressPayload(CompressionTypes.GZIP, payload);
      assert.deepEqual([packed[0], packed[1]], [0x1f, 0x8b], `${name}: gzip magic`);
      assert.ok((await decompressPayload(CompressionTypes.GZIP, packed)).equals(payload), name);
    }
    assert.ok((await compressPayload(CompressionTypes.GZIP, text)).length < text.length / 10);
  });

  it('reads what kafkajs GZIP wrote, and kafkajs reads what ours wrote', async () => {
    const theirs = kafkajs.CompressionCodecs[CompressionTypes.GZIP]!();
    const byThem = await theirs.compress({ buffer: text });
    assert.ok((await decompressPayload(CompressionTypes.GZIP, byThem)).equals(text));
    const byUs = await compressPayload(CompressionTypes.GZIP, text);
    assert.ok((await theirs.decompress(byUs)).equals(text));
  });

  it('takes kafkajs-snappy registered unchanged, and round-trips and interoperates with it', async () => {
    CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
    const theirs = SnappyCodec();
    for (const [name, payload] of samples) {
      const packed = await compressPayload(CompressionTypes.Snappy, payload);
      assert.ok((await decompressPayload(CompressionTypes.Snappy, packed)).equals(payload), name);
      assert.ok((await theirs.decompress(packed)).equals(payload), `${name}: kafkajs-snappy reads ours`);
      const byThem = await theirs.compress({ buffer: payload });
      assert.ok((await decompressPayload(CompressionTypes.Snappy, byThem)).equals(payload), `${name}: ours reads theirs`);
    }
  });

  it('returns the payload itself for None, without a codec', async () => {
    const payload = Buffer.from('plain');
    assert.equal(await compressPayload(CompressionTypes.None, payload), payload);
    assert.equal(await decompressPayload(CompressionTypes.None, payload), payload);
  });

  it('names the type and how to register a codec when none is registered', async () => {
    await rejectsWith(compressPayload(CompressionTypes.LZ4, text), (e) => {
      assert.ok(e instanceof UnsupportedCompressionError);
      assert.equal(e.compression, CompressionTypes.LZ4);
      assert.equal(e.code, ErrorCodes.CONFIG);
      assert.equal(e.retriable, false);
      assert.match(e.message, /no codec registered for LZ4 compression \(type 3\)/);
      assert.match(e.message, /CompressionCodecs\[CompressionTypes\.LZ4\] = /);
    });
    await rejectsWith(decompressPayload(CompressionTypes.Snappy, text), (e) => {
      assert.match(e.message, /CompressionCodecs\[CompressionTypes\.Snappy\] = require\('kafkajs-snappy'\)/);
    });
    assert.throws(() => lookupCodec(CompressionTypes.ZSTD), /no codec registered for ZSTD/);
    assert.throws(() => lookupCodec(CompressionTypes.None), /None has no codec/);
  });

  it('reports a factory that throws, as kafkajs stubs do, with the cause', () => {
    const boom = new Error('Snappy compression not implemented');
    CompressionCodecs[CompressionTypes.Snappy] = () => { throw boom; };
    assert.throws(() => lookupCodec(CompressionTypes.Snappy), (e: unknown) => {
      assert.ok(e instanceof UnsupportedCompressionError);
      assert.match(e.message, /codec factory registered for Snappy compression failed: Error: Snappy compression/);
      assert.equal(e.cause, boom);
      return true;
    });
  });

  it('makes one codec per registered factory and notices when the entry is replaced', async () => {
    let made = 0;
    const counting = (tag: number): CodecFactory => () => {
      made++;
      return {
        compress: async (encoder) => Buffer.concat([Buffer.from([tag]), encoder.buffer]),
        decompress: async (buffer) => buffer.subarray(1),
      };
    };
    CompressionCodecs[CompressionTypes.LZ4] = counting(1);
    for (let i = 0; i < 5; i++) assert.equal((await compressPayload(CompressionTypes.LZ4, text))[0], 1);
    assert.equal(made, 1);
    CompressionCodecs[CompressionTypes.LZ4] = counting(2);
    assert.equal((await compressPayload(CompressionTypes.LZ4, text))[0], 2);
    assert.equal(made, 2);
  });

  it('turns a codec answering a plain Uint8Array into a Buffer over the same bytes', async () => {
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      compress: async (encoder) => new Uint8Array(encoder.buffer) as Buffer,
      decompress: async (buffer) => new Uint8Array(buffer) as Buffer,
    });
    const out = await compressPayload(CompressionTypes.ZSTD, text);
    assert.ok(Buffer.isBuffer(out));
    assert.ok(out.equals(text));
  });

  it('fails bytes the codec cannot read with CORRUPT_RECORD, keeping the codec error as cause', async () => {
    await rejectsWith(decompressPayload(CompressionTypes.GZIP, Buffer.from('not gzip at all')), (e) => {
      assert.equal(e.code, ErrorCodes.CORRUPT_RECORD);
      assert.match(e.message, /GZIP decompression of a 15-byte payload failed/);
      assert.ok(e.cause instanceof Error);
    });
  });

  it('compresses the payload only: the attribute stays readable in the record DATA', async () => {
    const packed = await compressPayload(CompressionTypes.GZIP, text);
    const { data, flag } = encodePayload(packed, 'trace=42', flagWithCompression(0, CompressionTypes.GZIP));
    assert.equal(data.toString('utf8', 4, 12), 'trace=42');
    const decoded = decodePayload(data, flag);
    assert.equal(decoded.attribute, 'trace=42');
    assert.ok((await decompressPayload(compressionOfFlag(flag), decoded.payload)).equals(text));
  });
});
