/**
 * MetaQ's MessageIdCache: an LRU set of (group, message id) that the consumer asks before delivering, so a message
 * fetched twice (a rewind after a failure, a rebalance, a redelivery by the broker) reaches a group once while it
 * is remembered. It is a best-effort filter, not a guarantee: an evicted id is delivered again.
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
    if (this.size === 0) return false;
    const key = this.keyOf(group, id);
    const entries = this.entries;
    if (entries.has(key)) {
      entries.delete(key);
      entries.set(key, true);
      return true;
    }
    entries.set(key, true);
    if (entries.size > this.size) {
      // A Map iterates in insertion order, and a hit re-inserts: the first key is the least recently seen.
      const oldest = entries.keys().next();
      if (oldest.done !== true) entries.delete(oldest.value);
    }
    return false;
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
