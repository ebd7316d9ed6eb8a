/**
 * MetaQ's MessageIdCache: an LRU set of (group, message id). The consumer adds an id when the message is acked
 * (processed) and asks before delivering, so a message fetched again (a rebalance, a consumer made again) reaches
 * a group once while it is remembered. Marking on ack, not on delivery, means an unacked message is never skipped.
 * It is a best-effort filter, not a guarantee: an evicted id is delivered again.
 */

/** Room for the group index above the 64 id bits of a key. */
const GROUP_SHIFT = 64n;

/**
 * An LRU of the last `size` (group, id) pairs seen; `seen` is O(1). Size 0 turns it off (nothing is ever seen).
 *
 * @example
 * ```ts
 * const cache = new DedupeCache(4096);
 * cache.seen('billing', 42n); // false: first time, now remembered
 * cache.seen('billing', 42n); // true: skip it
 * cache.seen('audit', 42n);   // false: another group
 * ```
 */
export class DedupeCache {
  /** Key: the id for the first group seen (no allocation on the common one-group path), else id + group << 64. */
  private readonly entries = new Map<bigint, true>();
  private readonly groups = new Map<string, bigint>();
  private lastGroup: string | undefined = undefined;
  private lastGroupIndex = 0n;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`dedupe cache size must be an integer >= 0, got ${size}`);
  }

  /** Number of remembered pairs. */
  get count(): number {
    return this.entries.size;
  }

  /**
   * True when (group, id) was seen recently (it becomes the most recent again); otherwise remembers it, evicting the
   * least recent pair when full, and returns false.
   */
  seen(group: string, id: bigint): boolean {
    if (this.has(group, id)) return true;
    this.add(group, id);
    return false;
  }

  /** True when (group, id) is remembered (it becomes the most recent); remembers nothing new. */
  has(group: string, id: bigint): boolean {
    if (this.size === 0) return false;
    const key = this.keyOf(group, id);
    if (!this.entries.has(key)) return false;
    this.entries.delete(key);
    this.entries.set(key, true);
    return true;
  }

  /** Remembers (group, id) as the most recent pair, evicting the least recent when full. */
  add(group: string, id: bigint): void {
    if (this.size === 0) return;
    const key = this.keyOf(group, id);
    this.entries.delete(key);
    this.entries.set(key, true);
    if (this.entries.size > this.size) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  /** Forgets everything. */
  clear(): void {
    this.entries.clear();
  }

  private keyOf(group: string, id: bigint): bigint {
    let g: bigint;
    if (group === this.lastGroup) g = this.lastGroupIndex;
    else {
      let known = this.groups.get(group);
      if (known === undefined) {
        known = BigInt(this.groups.size);
        this.groups.set(group, known);
      }
      this.lastGroup = group;
      this.lastGroupIndex = known;
      g = known;
    }
    const unsigned = id < 0n ? BigInt.asUintN(64, id) : id;
    return g === 0n ? unsigned : unsigned + (g << GROUP_SHIFT);
  }
}

const shared = new Map<number, DedupeCache>();

/**
 * The process-wide cache of a given size, as MetaQ's MessageIdCache is one per JVM: consumers of a group in one
 * process (a partition moving between them, a consumer closed and made again) share what was processed.
 *
 * @example
 * ```ts
 * processIdCache(4096) === processIdCache(4096); // true
 * ```
 */
export function processIdCache(size: number): DedupeCache {
  let c = shared.get(size);
  if (c === undefined) {
    c = new DedupeCache(size);
    shared.set(size, c);
  }
  return c;
}
