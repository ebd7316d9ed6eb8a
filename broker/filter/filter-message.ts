/**
 * What a server-side filter sees of a message, and the view the broker hands it: one object per fetched window,
 * re-pointed at each record in turn, whose fields are read in place from the window's bytes.
 *
 * A filter module (see consumer-filters.ts) exports:
 *
 * ```ts
 * export function accept(group: string, message: FilterMessage): boolean
 * ```
 *
 * The message object is valid during the call only: the broker re-points it at the next record, so a filter must
 * not keep it, nor its `payload` (a view of the read buffer), past the call. Copy what you need to keep.
 */
import { FLAG_ATTRIBUTE, joinId, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';

/** A stored message as a filter sees it (MetaQ's `Message` in `ConsumerMessageFilter.accept(group, message)`). */
export interface FilterMessage {
  /** The broker-assigned 64-bit id. */
  readonly id: bigint;
  readonly topic: string;
  readonly partition: number;
  /** Log offset of the record's first byte. */
  readonly offset: number;
  /** The record flag: bit 0 = has an attribute; bits 16-18 = compression type (the payload is then compressed). */
  readonly flag: number;
  /** The message attribute (MetaQ's string tag), or null when the message has none. */
  readonly attribute: string | null;
  /** The payload as stored (still compressed when the flag says so). Valid during the call only. */
  readonly payload: Buffer;
}

/** The filter function a module exports as `accept`. Any truthy return accepts; a throw rejects. */
export type AcceptFunction = (group: string, message: FilterMessage) => unknown;

const NOT_READ = Symbol('not read');

/**
 * The reusable view: `point(pos, size)` moves it to the record at `window[pos, pos + size)`. The id, attribute and
 * payload are decoded only when the filter reads them, so a filter that looks at the attribute costs no bigint
 * and no Buffer per message.
 */
export class FilterMessageView implements FilterMessage {
  private pos = 0;
  private size = 0;
  private attr: string | null | typeof NOT_READ = NOT_READ;
  /** Log offset of the record now pointed at. */
  offset = 0;
  flag = 0;

  constructor(
    private readonly window: Buffer,
    /** Log offset of `window[0]`. */
    private readonly baseOffset: number,
    readonly topic: string,
    readonly partition: number,
  ) {}

  /** Points the view at the whole record `window[pos, pos + size)` (already framed by checkRecord). */
  point(pos: number, size: number): void {
    this.pos = pos;
    this.size = size;
    this.offset = this.baseOffset + pos;
    this.flag = this.window.readInt32BE(pos + 16);
    this.attr = NOT_READ;
  }

  get id(): bigint {
    return joinId(this.window.readUInt32BE(this.pos + 8), this.window.readUInt32BE(this.pos + 12));
  }

  get attribute(): string | null {
    if (this.attr === NOT_READ) {
      const len = this.attributeLength();
      const start = this.pos + RECORD_HEADER_SIZE + 4;
      this.attr = len < 0 ? null : this.window.toString('utf8', start, start + len);
    }
    return this.attr;
  }

  get payload(): Buffer {
    const len = this.attributeLength();
    const data = this.pos + RECORD_HEADER_SIZE;
    return this.window.subarray(len < 0 ? data : data + 4 + len, this.pos + this.size);
  }

  /** The attribute's byte length, or -1 without one. Throws on an impossible length (the filter call rejects). */
  private attributeLength(): number {
    if ((this.flag & FLAG_ATTRIBUTE) === 0) return -1;
    const dataLen = this.size - RECORD_HEADER_SIZE;
    const len = dataLen < 4 ? -1 : this.window.readInt32BE(this.pos + RECORD_HEADER_SIZE);
    if (len < 0 || 4 + len > dataLen) {
      throw new RangeError(`record at offset ${this.offset}: attribute length ${len} does not fit in DATA of ${dataLen} bytes`);
    }
    return len;
  }
}
