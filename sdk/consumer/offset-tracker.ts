/**
 * The acknowledged watermark of one partition: what may be committed so that a crash redelivers and never skips.
 *
 * Messages are registered in log order as they are handed out ({@link OffsetTracker.track}) and acked in any order;
 * the watermark only moves over a contiguous run of acked entries from the oldest one, so an ack out of order never
 * jumps a gap. Entries live in a ring buffer of typed arrays (no per-message object of our own): track and ack are
 * O(1), the watermark advance is O(1) amortised (each entry is passed once).
 */

/**
 * Something that knows its message id; read only when a commit needs it (ids are made lazily).
 *
 * @example
 * ```ts
 * tracker.track(message.nextOffset, message); // a Message is an IdSource
 * ```
 */
export interface IdSource {
  readonly id: bigint;
}

const ACKED = 1;

/**
 * Contiguous-ack watermark over a ring buffer.
 *
 * @example
 * ```ts
 * const t = new OffsetTracker(0);
 * const a = t.track(25, m1);  // record [0, 25)
 * const b = t.track(50, m2);  // record [25, 50)
 * t.ack(b);                   // out of order: the watermark stays at 0
 * t.ack(a);                   // now both: the watermark is 50, lastId = m2.id
 * ```
 */
export class OffsetTracker {
  private nextOffsets: Float64Array;
  private flags: Uint8Array;
  private sources: (IdSource | null)[];
  private mask: number;
  /** Sequence number of the oldest entry not yet passed by the watermark. */
  private head = 0;
  /** Sequence number the next entry gets. */
  private tail = 0;
  private mark: number;
  private markSource: IdSource | null = null;
  private markId: bigint;

  /**
   * @param startOffset where the partition is read from: the watermark until something is acked
   * @param lastId the id of the message before `startOffset`, when known (kept as the committed msgId)
   */
  constructor(startOffset: number, lastId = -1n, initialCapacity = 64) {
    let cap = 8;
    while (cap < initialCapacity) cap *= 2;
    this.nextOffsets = new Float64Array(cap);
    this.flags = new Uint8Array(cap);
    this.sources = new Array<IdSource | null>(cap).fill(null);
    this.mask = cap - 1;
    this.mark = startOffset;
    this.markId = lastId;
  }

  /** The offset to commit: just after the last message acked together with every message before it. */
  get watermark(): number {
    return this.mark;
  }

  /** Id of the message just before the watermark (-1n when none was acked yet and none was given). */
  get lastId(): bigint {
    if (this.markSource !== null) {
      this.markId = this.markSource.id;
      this.markSource = null;
    }
    return this.markId;
  }

  /** Entries tracked and not yet passed by the watermark (acked out of order ones included). */
  get pending(): number {
    return this.tail - this.head;
  }

  /**
   * Registers the next message of the partition (call in log order); returns its sequence number for {@link ack}.
   * `source` gives the id when this entry becomes the watermark; null keeps the previous id (an offset move).
   */
  track(nextOffset: number, source: IdSource | null): number {
    if (this.tail - this.head > this.mask) this.grow();
    const seq = this.tail++;
    const i = seq & this.mask;
    this.nextOffsets[i] = nextOffset;
    this.flags[i] = 0;
    this.sources[i] = source;
    return seq;
  }

  /**
   * Marks entry `seq` done. Returns true when the watermark moved. Unknown or already passed sequence numbers are
   * ignored (a late ack after a reset, a second ack).
   */
  ack(seq: number): boolean {
    if (seq < this.head || seq >= this.tail) return false;
    this.flags[seq & this.mask] = ACKED;
    if (seq !== this.head) return false;
    this.advance();
    return true;
  }

  /** Registers an entry that is done at once (a filtered message, a 301 move); returns true when the watermark moved. */
  skip(nextOffset: number, source: IdSource | null): boolean {
    return this.ack(this.track(nextOffset, source));
  }

  private advance(): void {
    const { nextOffsets, flags, sources, mask } = this;
    let h = this.head;
    const t = this.tail;
    while (h < t) {
      const i = h & mask;
      if (flags[i] !== ACKED) break;
      this.mark = nextOffsets[i]!;
      const s = sources[i]!;
      if (s !== null) this.markSource = s;
      sources[i] = null;
      flags[i] = 0;
      h++;
    }
    this.head = h;
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const mask = cap - 1;
    const nextOffsets = new Float64Array(cap);
    const flags = new Uint8Array(cap);
    const sources = new Array<IdSource | null>(cap).fill(null);
    for (let s = this.head; s < this.tail; s++) {
      const from = s & this.mask;
      const to = s & mask;
      nextOffsets[to] = this.nextOffsets[from]!;
      flags[to] = this.flags[from]!;
      sources[to] = this.sources[from]!;
    }
    this.nextOffsets = nextOffsets;
    this.flags = flags;
    this.sources = sources;
    this.mask = mask;
  }
}
