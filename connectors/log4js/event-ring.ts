/**
 * The appender's bounded buffer: a single-writer, single-reader ring of encoded events in shared memory. The writer
 * is the application's thread (log4js calls the appender there); the reader is the sender worker, which owns the
 * broker connection. Shared memory instead of postMessage keeps a log call at one copy into the ring and a few
 * atomics, and lets the `block` policy wait on the application's thread while the worker keeps sending.
 *
 * Bounds: at most `maxEvents` events and `data.byteLength` bytes (wrap padding included); an entry larger than half
 * the bytes is refused as oversized. The reader only *peeks*
 * while it sends; the room of an event comes back when its batch is released (acked or given up), so what is in
 * flight counts against the bound too.
 *
 * Entry layout (little endian, padded to 4 bytes):
 * ```
 * payloadLen:u32  keyLen:u16  attributeLen:u16  key  attribute  payload
 * ```
 * A `payloadLen` of 0xffffffff (or fewer than 4 bytes left) means "continue at offset 0".
 */

/** Indexes of the Int32 control words. */
export const RingControl = {
  /** Bytes taken (entries plus wrap padding); the writer adds, the reader subtracts on release. */
  used: 0,
  /** Entries written and not released. */
  count: 1,
  /** Bumped by every write and by shutdown: the reader waits on it. */
  writes: 2,
  /** RingState. */
  state: 3,
  /** Where the first unreleased entry starts: a reader started again (a new worker) resumes there. */
  tail: 4,
} as const;

export const RingState = { running: 0, closing: 1 } as const;

const CONTROL_WORDS = 5;
const HEADER = 8;
const WRAP = 0xffffffff;
/** Key and attribute lengths are u16. */
const MAX_SHORT = 0xffff;

/** The shared memory of one ring, passed to the worker as is. */
export interface RingMemory {
  readonly control: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
  readonly maxEvents: number;
}

export type WriteResult = 'ok' | 'full' | 'oversized';

/** Allocates the shared memory of a ring of `bytes` bytes (rounded up to 4) holding at most `maxEvents` entries. */
export function allocateRing(bytes: number, maxEvents: number): RingMemory {
  return {
    control: new SharedArrayBuffer(CONTROL_WORDS * 4),
    data: new SharedArrayBuffer(Math.ceil(bytes / 4) * 4),
    maxEvents,
  };
}

type WaitAsync = (array: Int32Array, index: number, value: number, timeoutMs: number) =>
  { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
/** Node 20 has Atomics.waitAsync (ES2024); our `lib` is ES2022, which does not declare it. */
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

function padded(n: number): number {
  return (n + 3) & ~3;
}

/**
 * The application side: `write` copies one event in or says why not, `waitForRoom` blocks the thread (Atomics.wait)
 * until the reader released something.
 */
export class EventRingWriter {
  private readonly ctl: Int32Array;
  private readonly buf: Buffer;
  private readonly capacity: number;
  private head = 0;

  constructor(private readonly memory: RingMemory, private readonly notifyAt: number) {
    this.ctl = new Int32Array(memory.control);
    this.buf = Buffer.from(memory.data);
    this.capacity = memory.data.byteLength;
  }

  get count(): number {
    return Atomics.load(this.ctl, RingControl.count);
  }

  get usedBytes(): number {
    return Atomics.load(this.ctl, RingControl.used);
  }

  /** Copies one event into the ring: 'full' when it does not fit now, 'oversized' when it may never fit. */
  write(key: string, attribute: string, payload: string): WriteResult {
    const keyLen = Buffer.byteLength(key);
    const attrLen = Buffer.byteLength(attribute);
    const payloadLen = Buffer.byteLength(payload);
    const size = padded(HEADER + keyLen + attrLen + payloadLen);
    // Past half the ring an entry may find no contiguous room even in an empty ring (the head sits mid-ring).
    if (keyLen > MAX_SHORT || attrLen > MAX_SHORT || size > this.capacity / 2) return 'oversized';
    const used = Atomics.load(this.ctl, RingControl.used);
    if (Atomics.load(this.ctl, RingControl.count) >= this.memory.maxEvents) return 'full';
    let at = this.head;
    let taken = size;
    if (this.capacity - at < size) {
      taken += this.capacity - at; // the tail end is padding; the entry starts at 0
      if (used + taken > this.capacity) return 'full';
      if (this.capacity - at >= 4) this.buf.writeUInt32LE(WRAP, at);
      at = 0;
    } else if (used + taken > this.capacity) {
      return 'full';
    }
    const b = this.buf;
    b.writeUInt32LE(payloadLen, at);
    b.writeUInt16LE(keyLen, at + 4);
    b.writeUInt16LE(attrLen, at + 6);
    let p = at + HEADER;
    if (keyLen > 0) p += b.write(key, p, 'utf8');
    if (attrLen > 0) p += b.write(attribute, p, 'utf8');
    b.write(payload, p, 'utf8');
    this.head = at + size === this.capacity ? 0 : at + size;
    // The bytes above are published by these atomic writes (the reader loads `count` before it reads an entry).
    Atomics.add(this.ctl, RingControl.used, taken);
    const count = Atomics.add(this.ctl, RingControl.count, 1) + 1;
    Atomics.add(this.ctl, RingControl.writes, 1);
    // The reader sleeps when the ring is empty or lingers for a batch: wake it only when that can change.
    if (count === 1 || count === this.notifyAt) Atomics.notify(this.ctl, RingControl.writes);
    return 'ok';
  }

  /** Blocks this thread until the reader released room or `timeoutMs` passed; false on timeout. */
  waitForRoom(timeoutMs: number): boolean {
    const used = Atomics.load(this.ctl, RingControl.used);
    return Atomics.wait(this.ctl, RingControl.used, used, Math.max(0, timeoutMs)) !== 'timed-out';
  }

  /** Tells the reader to flush and stop, and wakes it. */
  close(): void {
    Atomics.store(this.ctl, RingControl.state, RingState.closing);
    Atomics.add(this.ctl, RingControl.writes, 1);
    Atomics.notify(this.ctl, RingControl.writes);
    Atomics.notify(this.ctl, RingControl.state);
  }
}

/** One event read from the ring; `value` is a view into shared memory, valid until the next `release()`. */
export interface RingEntry {
  readonly key: string;
  readonly attribute: string;
  readonly value: Buffer;
}

/** The worker side: `next` peeks entries in order, `release` gives the room of every peeked entry back. */
export class EventRingReader {
  private readonly ctl: Int32Array;
  private readonly buf: Buffer;
  private readonly capacity: number;
  /** Where the next peek reads. */
  private cursor = 0;
  private peekedCount = 0;
  private peekedBytes = 0;

  constructor(memory: RingMemory) {
    this.ctl = new Int32Array(memory.control);
    this.buf = Buffer.from(memory.data);
    this.capacity = memory.data.byteLength;
    this.cursor = Atomics.load(this.ctl, RingControl.tail);
  }

  /** Entries written and not yet peeked. */
  get available(): number {
    return Atomics.load(this.ctl, RingControl.count) - this.peekedCount;
  }

  /** Entries written and not yet released. */
  get count(): number {
    return Atomics.load(this.ctl, RingControl.count);
  }

  get closing(): boolean {
    return Atomics.load(this.ctl, RingControl.state) === RingState.closing;
  }

  /** The value of the wake-up word, to read before checking for entries and then to pass to `waitForWrite`. */
  get writes(): number {
    return Atomics.load(this.ctl, RingControl.writes);
  }

  /** Forgets what was peeked and not released: the next `next()` reads the first unreleased entry again. */
  rewind(): void {
    this.cursor = Atomics.load(this.ctl, RingControl.tail);
    this.peekedCount = 0;
    this.peekedBytes = 0;
  }

  /** The next entry not peeked yet, or undefined. */
  next(): RingEntry | undefined {
    if (this.available <= 0) return undefined;
    let at = this.cursor;
    if (this.capacity - at < 4 || this.buf.readUInt32LE(at) === WRAP) {
      this.peekedBytes += this.capacity - at;
      at = 0;
    }
    const b = this.buf;
    const payloadLen = b.readUInt32LE(at);
    const keyLen = b.readUInt16LE(at + 4);
    const attrLen = b.readUInt16LE(at + 6);
    let p = at + HEADER;
    const key = keyLen === 0 ? '' : b.toString('utf8', p, p + keyLen);
    p += keyLen;
    const attribute = attrLen === 0 ? '' : b.toString('utf8', p, p + attrLen);
    p += attrLen;
    const value = b.subarray(p, p + payloadLen);
    const size = padded(HEADER + keyLen + attrLen + payloadLen);
    this.peekedBytes += size;
    this.peekedCount++;
    this.cursor = at + size === this.capacity ? 0 : at + size;
    return { key, attribute, value };
  }

  /** Gives back the room of every entry peeked so far and wakes a writer blocked on a full ring. */
  release(): void {
    if (this.peekedCount === 0) return;
    Atomics.store(this.ctl, RingControl.tail, this.cursor);
    Atomics.sub(this.ctl, RingControl.count, this.peekedCount);
    Atomics.sub(this.ctl, RingControl.used, this.peekedBytes);
    Atomics.notify(this.ctl, RingControl.used);
    this.peekedCount = 0;
    this.peekedBytes = 0;
  }

  /** Resolves when a writer bumped `writes` past `seen` (or at once if it already did), or after `timeoutMs`. */
  async waitForWrite(seen: number, timeoutMs: number): Promise<void> {
    const r = waitAsync(this.ctl, RingControl.writes, seen, Math.max(0, timeoutMs));
    if (r.async) await r.value;
  }

  /** Sleeps `ms`, waking early when the writer closes the ring. */
  async sleep(ms: number): Promise<void> {
    const r = waitAsync(this.ctl, RingControl.state, RingState.running, Math.max(0, ms));
    if (r.async) await r.value;
  }
}
