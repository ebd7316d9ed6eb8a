/**
 * MetaQ's CONSIST strategy (ConsisHashStrategy with KETAMA_HASH): a ketama ring of the consumers, 160 points each
 * (40 MD5 digests of `"<consumer>-<i>"`, each cut into 4 little-endian uint32 keys); a partition goes to the first
 * point at or after the MD5 of its name (`"<brokerId>-<n>"`, low 4 bytes little-endian), wrapping around. When
 * consumers come and go only about P/C partitions move, against most of them for the range strategy. When two
 * consumers hash to the same point the later one in the sorted list keeps it, as Java's TreeMap.put does.
 */
import { createHash } from 'node:crypto';

const POINTS_PER_CONSUMER = 160;

interface Ring {
  readonly keys: Float64Array;
  readonly owners: string[];
}

function md5(text: string): Buffer {
  return createHash('md5').update(text, 'utf8').digest();
}

/** KETAMA_HASH of a key: the first 4 bytes of its MD5, little-endian, as an unsigned 32-bit number. */
export function ketamaHash(key: string): number {
  return md5(key).readUInt32LE(0);
}

function buildRing(consumers: readonly string[]): Ring {
  const points = new Map<number, string>();
  for (const c of consumers) {
    for (let i = 0; i < POINTS_PER_CONSUMER / 4; i++) {
      const d = md5(`${c}-${i}`);
      for (let h = 0; h < 4; h++) points.set(d.readUInt32LE(h * 4), c);
    }
  }
  const keys = Float64Array.from(points.keys()).sort();
  return { keys, owners: Array.from(keys, (k) => points.get(k)!) };
}

/** The owner of the first ring point >= hash, wrapping to the first point. */
function ownerOf(ring: Ring, hash: number): string | undefined {
  const { keys } = ring;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < hash) lo = mid + 1;
    else hi = mid;
  }
  return ring.owners[lo === keys.length ? 0 : lo];
}

/**
 * The partitions of `consumer` on the ketama ring of `consumers` (in the order of `partitions`).
 *
 * @example
 * ```ts
 * consistentHashStrategy('orders', 'g_a', ['g_a', 'g_b'], ['0-0', '0-1', '0-2', '0-3']); // some of them
 * ```
 */
export function consistentHashStrategy(_topic: string, consumer: string, consumers: readonly string[],
  partitions: readonly string[]): string[] {
  if (!consumers.includes(consumer)) return [];
  const ring = buildRing(consumers);
  return partitions.filter((p) => ownerOf(ring, ketamaHash(p)) === consumer);
}
