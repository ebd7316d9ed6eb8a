/**
 * Value serializers: how a producer turns a value into payload bytes, and a consumer turns them back. A wrong
 * input type fails at once with an InvalidArgumentError naming the serializer and what it got, never later as
 * garbage on the wire.
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * Turns a value into the payload bytes of a message.
 *
 * @example
 * ```ts
 * const upper: Serializer<string> = (s) => Buffer.from(s.toUpperCase(), 'utf8');
 * ```
 */
export type Serializer<V> = (value: V) => Buffer;

/**
 * What a consumer tells a deserializer about the message besides its payload (a `Message` fits).
 *
 * @example
 * ```ts
 * const byAttr: Deserializer<unknown> = (p, m) => (m?.attribute === 'json' ? JSON.parse(p.toString()) : p);
 * ```
 */
export interface DeserializeContext {
  readonly topic: string;
  readonly attribute: string | null;
}

/**
 * Turns a (decompressed) payload back into a value. The context is optional, so `(payload) => V` functions fit.
 *
 * @example
 * ```ts
 * const asNumber: Deserializer<number> = (payload) => payload.readDoubleBE(0);
 * ```
 */
export type Deserializer<V> = (payload: Buffer, context?: DeserializeContext) => V;

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'no prototype'})`;
  return `a ${typeof value}`;
}

function toBuffer(value: unknown, allowString: boolean, name: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (allowString && typeof value === 'string') return Buffer.from(value, 'utf8');
  throw new InvalidArgumentError(
    `the ${name} serializer expects a Buffer${allowString ? ' or a string' : ''}, got ${describe(value)}`);
}

const bufferSerializer: Serializer<Buffer | Uint8Array> = (value) => toBuffer(value, false, 'buffer');

const stringSerializer: Serializer<string> = (value) => {
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(`the string serializer expects a string, got ${describe(value)}`);
  }
  return Buffer.from(value, 'utf8');
};

const autoSerializer: Serializer<Buffer | Uint8Array | string> =
  (value) => toBuffer(value, true, 'default');

const jsonSerializer: Serializer<unknown> = (value) => {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    const e = new InvalidArgumentError(`the json serializer cannot encode ${describe(value)}: ${String(cause)}`);
    throw Object.assign(e, { cause });
  }
  // JSON.stringify answers undefined for undefined, functions and symbols: there is nothing to send.
  if (text === undefined) {
    throw new InvalidArgumentError(`the json serializer cannot encode ${describe(value)}`);
  }
  return Buffer.from(text, 'utf8');
};

/**
 * The built-in serializers. `auto` (Buffers as they are, strings as UTF-8) is what producers use by default.
 *
 * @example
 * ```ts
 * const producer = client.producer<Order>({ serializer: Serializers.json });
 * await producer.send({ topic: 'orders', value: { id: 7, total: 12.5 } });
 * ```
 */
export const Serializers = {
  /** A Buffer (or any Uint8Array) as is, without copying. */
  buffer: bufferSerializer,
  /** A string as UTF-8. */
  string: stringSerializer,
  /** Buffers as they are, strings as UTF-8: the producers' default. */
  auto: autoSerializer,
  /** `JSON.stringify(value)` as UTF-8. */
  json: jsonSerializer,
} as const;

const bufferDeserializer: Deserializer<Buffer> = (payload) => payload;

const stringDeserializer: Deserializer<string> = (payload) => payload.toString('utf8');

// Generic, so `deserializer: Deserializers.json` fits a consumer of any V without a cast (the JSON is trusted to be V).
function jsonDeserializer<V = unknown>(payload: Buffer, context?: DeserializeContext): V {
  try {
    return JSON.parse(payload.toString('utf8')) as V;
  } catch (cause) {
    const where = context === undefined ? '' : ` of a message of topic ${context.topic}`;
    const e = new InvalidArgumentError(
      `the json deserializer cannot parse the ${payload.length}-byte payload${where}: ${String(cause)}`);
    throw Object.assign(e, { cause });
  }
}

/**
 * The built-in deserializers. `buffer` (the payload as is) is what consumers use by default.
 *
 * @example
 * ```ts
 * const consumer = client.consumer<Order>({ group: 'billing', deserializer: Deserializers.json });
 * ```
 */
export const Deserializers = {
  /** The payload Buffer as is: the consumers' default. */
  buffer: bufferDeserializer,
  /** The payload as UTF-8 text. */
  string: stringDeserializer,
  /** `JSON.parse` of the UTF-8 payload. */
  json: jsonDeserializer,
} as const;

/**
 * The serializer a producer uses when none is given: Buffers (and Uint8Arrays) as is, strings as UTF-8.
 *
 * @example
 * ```ts
 * const serializer = options.serializer ?? (defaultSerializer as Serializer<V>);
 * ```
 */
export const defaultSerializer: Serializer<Buffer | Uint8Array | string> = Serializers.auto;

/**
 * The deserializer a consumer uses when none is given: the payload Buffer as is.
 *
 * @example
 * ```ts
 * const deserializer = options.deserializer ?? (defaultDeserializer as Deserializer<V>);
 * ```
 */
export const defaultDeserializer: Deserializer<Buffer> = Deserializers.buffer;
