/**
 * Turns a fetched message set (a `value` body: a byte window of the partition log whose last record may be cut)
 * into messages. This is the consumer's hot path, so each record costs one small object and nothing else: the id,
 * the attribute, the payload view and the value are all made on first access.
 *
 * Record layout (see protocol/record.ts): `msgLen:int32 crc:int32 msgId:int64 flag:int32 DATA`, DATA =
 * `[attrLen:int32 attr]` (flag bit0) + payload. Compression (codec/compression.ts) covers the payload only.
 */
import { COMPRESSION_FLAG_MASK, compressionOfFlag, CompressionTypes, decompressPayload } from '../codec/compression.js';
import type { Deserializer } from '../codec/serializers.js';
import { CorruptRecordError } from '../errors.js';
import type { Message, Partition } from '../message.js';
import {
  checkRecord, DEFAULT_MAX_MESSAGE_SIZE, describeRecordCheck, FLAG_ATTRIBUTE, joinId, RECORD_HEADER_SIZE, RecordCheck,
  type RecordCheckFailure,
} from '../protocol/record.js';

/** Options of {@link decodeMessages}. */
export interface DecodeMessagesOptions<V> {
  readonly topic: string;
  readonly partition: Partition;
  /** Log offset of `buf[0]`. */
  readonly baseOffset: number;
  readonly deserializer: Deserializer<V>;
  /** Largest DATA accepted; a larger length is corruption. Default 2 MiB (MetaQ's limit). */
  readonly maxMessageSize?: number;
}

/** What {@link decodeMessages} found in a message set. */
export interface DecodedMessages<V> {
  readonly messages: FetchedMessage<V>[];
  /** Bytes of whole records; `baseOffset + bytesConsumed` is where the next fetch starts. */
  readonly bytesConsumed: number;
  /** True when bytes remain after the last whole record (a cut record). */
  readonly truncatedTail: boolean;
  /**
   * Full size (header + DATA) of the cut record at the end, read from its length field: a fetch of at least this
   * many bytes returns it whole. Undefined when no tail was cut or fewer than 4 of its bytes arrived.
   */
  readonly nextRecordSize?: number;
}

/**
 * A message of a fetched message set. Its bytes stay in the fetched buffer (no copy); `id`, `attribute`, `payload`
 * and `value` are computed on first access and cached. `redeliveries` is writable for the consumer that
 * redelivers it.
 *
 * @example
 * ```ts
 * const { messages } = decodeMessagesSync(body, { topic: 't', partition, baseOffset: 0, deserializer: Deserializers.string })!;
 * for (const m of messages) console.log(m.id, m.value);
 * ```
 */
export class FetchedMessage<V = Buffer> implements Message<V> {
  redeliveries = 0;
  private cachedId: bigint | undefined = undefined;
  private cachedAttribute: string | null | undefined = undefined;
  private cachedPayload: Buffer | undefined = undefined;
  private cachedValue: V | undefined = undefined;
  private hasValue = false;

  /** @internal built by the decoders */
  constructor(
    readonly topic: string,
    readonly partition: Partition,
    readonly offset: number,
    readonly nextOffset: number,
    private readonly idHi: number,
    private readonly idLo: number,
    readonly flag: number,
    /** The buffer holding DATA, and where DATA starts and ends in it. */
    private readonly buf: Buffer,
    private readonly dataStart: number,
    private readonly dataEnd: number,
    private readonly deserializer: Deserializer<V>,
  ) {}

  get id(): bigint {
    return (this.cachedId ??= joinId(this.idHi, this.idLo));
  }

  get attribute(): string | null {
    if (this.cachedAttribute === undefined) {
      // The length was checked when the record was decoded.
      this.cachedAttribute = (this.flag & FLAG_ATTRIBUTE) === 0
        ? null
        : this.buf.toString('utf8', this.dataStart + 4, this.payloadStart());
    }
    return this.cachedAttribute;
  }

  get payload(): Buffer {
    return (this.cachedPayload ??= this.rawPayload());
  }

  get value(): V {
    if (!this.hasValue) {
      this.cachedValue = this.deserializer(this.payload, this);
      this.hasValue = true;
    }
    return this.cachedValue as V;
  }

  /** The stored payload bytes (still compressed when the flag says so). */
  rawPayload(): Buffer {
    return this.buf.subarray(this.payloadStart(), this.dataEnd);
  }

  /** @internal the async decoder sets the decompressed payload */
  setPayload(payload: Buffer): void {
    this.cachedPayload = payload;
  }

  private payloadStart(): number {
    if ((this.flag & FLAG_ATTRIBUTE) === 0) return this.dataStart;
    return this.dataStart + 4 + this.buf.readInt32BE(this.dataStart);
  }
}

/**
 * Decodes the whole records of a message set, decompressing compressed payloads. A record whose length or checksum
 * is wrong raises CorruptRecordError: corrupt bytes are never delivered.
 *
 * @example
 * ```ts
 * const r = await decodeMessages(body, { topic: 'orders', partition, baseOffset: offset, deserializer: Deserializers.buffer });
 * offset += r.bytesConsumed;
 * if (r.messages.length === 0 && r.nextRecordSize !== undefined) fetchSize = Math.max(fetchSize, r.nextRecordSize);
 * ```
 */
export async function decodeMessages<V>(buf: Buffer, o: DecodeMessagesOptions<V>): Promise<DecodedMessages<V>> {
  const compressed: FetchedMessage<V>[] = [];
  // With a list to collect compressed records into, the scan never gives up.
  const result = scan(buf, o, compressed) as DecodedMessages<V>;
  if (compressed.length > 0) {
    await Promise.all(compressed.map(async (m) => {
      m.setPayload(await decompressPayload(compressionOfFlag(m.flag), m.rawPayload()));
    }));
  }
  return result;
}

/**
 * The synchronous {@link decodeMessages}: undefined when the set holds a compressed message (then use the async
 * one). No promise is made, which matters at millions of messages per second.
 *
 * @example
 * ```ts
 * const r = decodeMessagesSync(body, options) ?? await decodeMessages(body, options);
 * ```
 */
export function decodeMessagesSync<V>(buf: Buffer, o: DecodeMessagesOptions<V>): DecodedMessages<V> | undefined {
  return scan(buf, o, undefined);
}

/** Walks the records; compressed ones go to `compressed`, or end the scan (undefined) when it is not given. */
function scan<V>(buf: Buffer, o: DecodeMessagesOptions<V>, compressed: FetchedMessage<V>[] | undefined):
DecodedMessages<V> | undefined {
  const max = o.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const { topic, partition, baseOffset, deserializer } = o;
  const end = buf.length;
  const messages: FetchedMessage<V>[] = [];
  let pos = 0;
  for (;;) {
    const size = checkRecord(buf, pos, end, max);
    if (size === RecordCheck.INCOMPLETE_HEADER || size === RecordCheck.INCOMPLETE_DATA) break;
    if (size === RecordCheck.BAD_LENGTH) throw corrupt(o, pos, `invalid length ${buf.readInt32BE(pos)}`);
    if (size < 0) throw corrupt(o, pos, describeRecordCheck(size as RecordCheckFailure));
    const dataStart = pos + RECORD_HEADER_SIZE;
    const dataEnd = pos + size;
    const len = size - RECORD_HEADER_SIZE;
    const flag = buf.readInt32BE(pos + 16);
    if ((flag & FLAG_ATTRIBUTE) !== 0) {
      const attrLen = len >= 4 ? buf.readInt32BE(dataStart) : -1;
      if (attrLen < 0 || 4 + attrLen > len) throw corrupt(o, pos, `attribute length ${attrLen} exceeds DATA of ${len} bytes`);
    }
    const m = new FetchedMessage<V>(topic, partition, baseOffset + pos, baseOffset + dataEnd,
      buf.readUInt32BE(pos + 8), buf.readUInt32BE(pos + 12), flag, buf, dataStart, dataEnd, deserializer);
    // The mask test first: compressionOfFlag also validates, which the common uncompressed record need not pay for.
    if ((flag & COMPRESSION_FLAG_MASK) !== 0 && compressionOfFlag(flag) !== CompressionTypes.None) {
      if (compressed === undefined) return undefined;
      compressed.push(m);
    }
    messages.push(m);
    pos = dataEnd;
  }
  if (pos === end) return { messages, bytesConsumed: pos, truncatedTail: false };
  let nextRecordSize: number | undefined;
  if (end - pos >= 4) {
    const len = buf.readInt32BE(pos);
    if (len < 0 || len > max) throw corrupt(o, pos, `invalid length ${len}`);
    nextRecordSize = RECORD_HEADER_SIZE + len;
  }
  return nextRecordSize === undefined
    ? { messages, bytesConsumed: pos, truncatedTail: true }
    : { messages, bytesConsumed: pos, truncatedTail: true, nextRecordSize };
}

function corrupt(o: DecodeMessagesOptions<unknown>, pos: number, reason: string): CorruptRecordError {
  return new CorruptRecordError(o.topic, o.partition.partition, o.baseOffset + pos, reason);
}
