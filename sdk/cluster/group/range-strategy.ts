/**
 * MetaQ's DEFAULT strategy (Kafka's range assignment): with P partitions and C consumers, both sorted as strings,
 * consumer i takes the contiguous run starting at `n*i + min(i, extra)` of length `n + (i < extra ? 1 : 0)`, where
 * `n = floor(P/C)` and `extra = P % C`. The string order is part of the contract: `"0-10"` sorts before `"0-2"`, and
 * a member sorting otherwise would claim partitions another member also claims.
 *
 * @example
 * ```ts
 * rangeStrategy('orders', 'g_b', ['g_a', 'g_b', 'g_c'], ['0-0', '0-1', '0-2', '0-3']); // ['0-2']
 * ```
 */
export function rangeStrategy(_topic: string, consumer: string, consumers: readonly string[],
  partitions: readonly string[]): string[] {
  const i = consumers.indexOf(consumer);
  if (i < 0 || consumers.length === 0) return [];
  const n = Math.floor(partitions.length / consumers.length);
  const extra = partitions.length % consumers.length;
  const start = n * i + Math.min(i, extra);
  const count = n + (i < extra ? 1 : 0);
  return partitions.slice(start, start + count);
}
