/**
 * mulberry32: a small, seedable PRNG, so a randomized test prints its seed and a failure replays exactly. Shared by
 * the tests of the SDK and the broker (the broker may import sdk/protocol only).
 *
 * @example
 * ```ts
 * const random = rng(Number(process.env.SEED ?? Date.now()));
 * const n = Math.floor(random() * 10);   // 0..9
 * ```
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
