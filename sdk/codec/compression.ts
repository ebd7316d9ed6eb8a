/**
 * Payload compression with kafkajs's codec contract, so kafkajs codec packages (kafkajs-snappy, ...) plug in
 * unchanged. Only the payload is compressed; the attribute and the record header stay plain, and an uncompressed
 * record is byte for byte what MetaQ 1.4 writes.
 *
 * The codec id travels in the record's `flag` word. MetaQ uses only bit 0 (has attribute; MessageFlagUtils says
 * "others reserved") and its Java client tests `flag & 1` only, so we use bits 16..18:
 *
 * ```
 * bits  31 .. 19  | 18 .. 16         | 15 .. 1  | 0
 *       reserved  | compression type | reserved | has attribute
 * ```
 */
import { gzip, unzip } from 'node:zlib';
import { promisify } from 'node:util';
import { ErrorCodes, InvalidArgumentError, MetaqError, UnsupportedCompressionError } from '../errors.js';

/**
 * Compression codec ids, the same numbers as kafkajs's `CompressionTypes`.
 *
 * @example
 * ```ts
 * const producer = client.producer({ compression: CompressionTypes.GZIP });
 * ```
 */
export const CompressionTypes = { None: 0, GZIP: 1, Snappy: 2, LZ4: 3, ZSTD: 4 } as const;
/** One of {@link CompressionTypes}. @example `const type: CompressionType = CompressionTypes.Snappy;` */
export type CompressionType = (typeof CompressionTypes)[keyof typeof CompressionTypes];

/**
 * What a codec's `compress` receives: kafkajs passes its Encoder, of which codecs read `.buffer` only.
 * @example `await codec.compress({ buffer: Buffer.from('hello') })`
 */
export interface EncoderLike {
  readonly buffer: Buffer;
}

/**
 * A compression codec, exactly kafkajs's contract.
 *
 * @example
 * ```ts
 * const Brotli: CodecFactory = () => ({
 *   compress: async (encoder) => promisify(brotliCompress)(encoder.buffer),
 *   decompress: async (buffer) => promisify(brotliDecompress)(buffer),
 * });
 * ```
 */
export interface Codec {
  compress(encoder: EncoderLike): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/**
 * Makes a codec; what `CompressionCodecs` holds (kafkajs-snappy's default export is one).
 * @example `const codec = (CompressionCodecs[CompressionTypes.GZIP] as CodecFactory)();`
 */
export type CodecFactory = () => Codec;

const gzipAsync = promisify(gzip);
const unzipAsync = promisify(unzip);

/** Built-in GZIP, the same as kafkajs's: zlib gzip out, zlib unzip (gzip or deflate) in. */
const GzipCodec: CodecFactory = () => ({
  compress: (encoder) => gzipAsync(encoder.buffer),
  decompress: (buffer) => unzipAsync(buffer),
});

/**
 * The codec registry, mutable as in kafkajs: GZIP is built in, Snappy, LZ4 and ZSTD are absent until registered.
 * A codec registered after a producer was made is used from its next message on.
 *
 * @example
 * ```ts
 * import SnappyCodec from 'kafkajs-snappy';
 * CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
 * ```
 */
export const CompressionCodecs: { [T in CompressionType]?: CodecFactory } = {
  [CompressionTypes.GZIP]: GzipCodec,
};

const NAMES = ['None', 'GZIP', 'Snappy', 'LZ4', 'ZSTD'] as const;
const MAX_TYPE = NAMES.length - 1;
const KNOWN = NAMES.map((n, i) => `${i}=${n}`).join(', ');

/** First bit of the compression type in the record flag. @example `(flag >>> COMPRESSION_FLAG_SHIFT) & 7` */
export const COMPRESSION_FLAG_SHIFT = 16;
/** The flag bits that hold the compression type. @example `const plain = (flag & COMPRESSION_FLAG_MASK) === 0;` */
export const COMPRESSION_FLAG_MASK = 0x7 << COMPRESSION_FLAG_SHIFT;

/**
 * The compression type a record flag names. Throws UnsupportedCompressionError for the codes 5..7, which no
 * version of metaq writes.
 *
 * @example
 * ```ts
 * compressionOfFlag(0x1);                 // CompressionTypes.None (attribute bit only)
 * compressionOfFlag(0x1 | (1 << 16));     // CompressionTypes.GZIP
 * ```
 */
export function compressionOfFlag(flag: number): CompressionType {
  const type = (flag & COMPRESSION_FLAG_MASK) >>> COMPRESSION_FLAG_SHIFT;
  if (type > MAX_TYPE) {
    throw new UnsupportedCompressionError(type,
      `record flag 0x${(flag >>> 0).toString(16)} names compression code ${type}, which is not defined (known: ${KNOWN})`);
  }
  return type as CompressionType;
}

/**
 * `flag` with its compression bits set to `type`; every other bit (the attribute bit) is kept. With `None` a flag
 * without compression bits comes back unchanged, so uncompressed records stay identical to MetaQ's.
 *
 * @example
 * ```ts
 * flagWithCompression(FLAG_ATTRIBUTE, CompressionTypes.GZIP); // 0x10001
 * flagWithCompression(FLAG_ATTRIBUTE, CompressionTypes.None); // 0x1
 * ```
 */
export function flagWithCompression(flag: number, type: CompressionType): number {
  if (!Number.isInteger(type) || type < 0 || type > MAX_TYPE) {
    throw new InvalidArgumentError(`compression type must be one of ${KNOWN}; got ${String(type)}`);
  }
  return (flag & ~COMPRESSION_FLAG_MASK) | (type << COMPRESSION_FLAG_SHIFT);
}

const nameOf = (type: number): string => NAMES[type] ?? `code ${type}`;

// A factory per message would allocate a codec object per message (kafkajs-snappy's does), so keep one codec per
// type and remake it only when the registry entry was replaced.
const cachedFactories: (CodecFactory | undefined)[] = [];
const cachedCodecs: (Codec | undefined)[] = [];

/**
 * The codec registered for `type`. Throws UnsupportedCompressionError, saying how to register one, when there is
 * none (always for `None`, which needs no codec) or its factory throws.
 *
 * @example
 * ```ts
 * const gzip = lookupCodec(CompressionTypes.GZIP);
 * const packed = await gzip.compress({ buffer: Buffer.from('hello') });
 * ```
 */
export function lookupCodec(type: CompressionType): Codec {
  const factory = CompressionCodecs[type];
  if (factory === undefined) {
    if (type === CompressionTypes.None) {
      throw new UnsupportedCompressionError(type, 'compression None has no codec: the payload is stored as is');
    }
    throw new UnsupportedCompressionError(type,
      `no codec registered for ${nameOf(type)} compression (type ${type}); register a kafkajs-compatible codec ` +
      `factory first, e.g. CompressionCodecs[CompressionTypes.${nameOf(type)}] = ` +
      `${type === CompressionTypes.Snappy ? "require('kafkajs-snappy')" : 'myCodecFactory'}`);
  }
  if (cachedFactories[type] === factory) return cachedCodecs[type] as Codec;
  let codec: Codec;
  try {
    codec = factory();
  } catch (cause) {
    throw new UnsupportedCompressionError(type,
      `the codec factory registered for ${nameOf(type)} compression failed: ${String(cause)}`, { cause });
  }
  cachedFactories[type] = factory;
  cachedCodecs[type] = codec;
  return codec;
}

/** Codecs may answer with a plain Uint8Array (pure-JS ones often do); view it as a Buffer without copying. */
function asBuffer(out: Uint8Array): Buffer {
  return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Compresses a payload with the codec of `type`; `None` returns `payload` itself.
 *
 * @example
 * ```ts
 * const body = await compressPayload(CompressionTypes.GZIP, Buffer.from(JSON.stringify(order)));
 * const { data, flag } = encodePayload(body, null, flagWithCompression(0, CompressionTypes.GZIP));
 * ```
 */
export async function compressPayload(type: CompressionType, payload: Buffer): Promise<Buffer> {
  if (type === CompressionTypes.None) return payload;
  const codec = lookupCodec(type);
  try {
    return asBuffer(await codec.compress({ buffer: payload }));
  } catch (cause) {
    throw new MetaqError(ErrorCodes.INVALID_ARGUMENT,
      `${nameOf(type)} compression of a ${payload.length}-byte payload failed: ${String(cause)}`, { cause });
  }
}

/**
 * Decompresses a payload compressed with `type`; `None` returns `payload` itself. Bytes the codec cannot read fail
 * with a MetaqError of code CORRUPT_RECORD.
 *
 * @example
 * ```ts
 * const payload = await decompressPayload(compressionOfFlag(message.flag), body);
 * ```
 */
export async function decompressPayload(type: CompressionType, payload: Buffer): Promise<Buffer> {
  if (type === CompressionTypes.None) return payload;
  const codec = lookupCodec(type);
  try {
    return asBuffer(await codec.decompress(payload));
  } catch (cause) {
    throw new MetaqError(ErrorCodes.CORRUPT_RECORD,
      `${nameOf(type)} decompression of a ${payload.length}-byte payload failed: ${String(cause)}`, { cause });
  }
}
