/**
 * How a producer picks the partition of a record that does not name one. The selectors are MetaQ's
 * (client/producer/RoundRobinPartitionSelector, RandomPartitionSelector) plus kafkajs's keyed partitioner:
 *
 * - `round-robin`: `partitions[++counter % n]` with one counter per topic, exactly as MetaQ, so the first record
 *   of a topic goes to index 1, then 2, ..., n-1, 0, 1, ...
 * - `random`: uniform over the partitions.
 * - `hash`: `toPositive(murmur2(key)) % n` (Java/kafkajs compatible), so equal keys land on one partition and
 *   keep their order; a record without a key falls back to round-robin.
 * - a function `(topic, partitions, record) => Partition`, whose answer must be one of `partitions`.
 */
import { murmur2, toPositive } from '../codec/murmur2.js';
import type { PartitionSelectorOption } from '../config.js';
import { InvalidArgumentError, UnknownTopicError } from '../errors.js';
import type { Partition } from '../message.js';

/** A chooser of partitions; `select` is called once per record on the send path. */
export interface PartitionSelector {
  select(topic: string, partitions: readonly Partition[], record: { readonly key?: string | Buffer | undefined }): Partition;
}

/**
 * Builds the selector named by a producer's `partitioner` option (default `'round-robin'`).
 *
 * @example
 * ```ts
 * const s = partitionSelector('round-robin');
 * const ps = [{ brokerId: 0, partition: 0 }, { brokerId: 0, partition: 1 }];
 * s.select('orders', ps, {}).partition; // 1 (MetaQ's first pick)
 * s.select('orders', ps, {}).partition; // 0
 * ```
 */
export function partitionSelector(option: PartitionSelectorOption = 'round-robin'): PartitionSelector {
  if (typeof option === 'function') return new FunctionSelector(option);
  switch (option) {
    case 'round-robin': return new RoundRobinSelector();
    case 'random': return new RandomSelector();
    case 'hash': return new HashSelector();
    default: throw new InvalidArgumentError(
      `unknown partitioner ${JSON.stringify(option)}: use 'round-robin', 'random', 'hash' or a function`);
  }
}

/**
 * MetaQ's round-robin: a per-topic counter incremented before use, so the first record goes to index 1.
 *
 * @example
 * ```ts
 * const s = new RoundRobinSelector();
 * s.select('t', partitions, {}); // partitions[1 % partitions.length]
 * ```
 */
export class RoundRobinSelector implements PartitionSelector {
  private readonly counters = new Map<string, { n: number }>();

  select(topic: string, partitions: readonly Partition[]): Partition {
    let c = this.counters.get(topic);
    if (c === undefined) {
      c = { n: 0 };
      this.counters.set(topic, c);
    }
    // Wrap well below 2^53 so the sequence never loses precision; the wrap point is a multiple of every small n.
    c.n = c.n >= 0x3fffffff ? 1 : c.n + 1;
    return pick(topic, partitions, c.n % partitions.length);
  }
}

/**
 * A uniformly random partition per record.
 *
 * @example
 * ```ts
 * new RandomSelector().select('t', partitions, {});
 * ```
 */
export class RandomSelector implements PartitionSelector {
  select(topic: string, partitions: readonly Partition[]): Partition {
    return pick(topic, partitions, Math.floor(Math.random() * partitions.length));
  }
}

/**
 * The key's murmur2 hash modulo the partition count (kafkajs's default partitioner); keyless records go
 * round-robin.
 *
 * @example
 * ```ts
 * const s = new HashSelector();
 * s.select('t', partitions, { key: 'customer-7' }) === s.select('t', partitions, { key: 'customer-7' }); // same partition
 * ```
 */
export class HashSelector implements PartitionSelector {
  private readonly fallback = new RoundRobinSelector();

  select(topic: string, partitions: readonly Partition[], record: { readonly key?: string | Buffer | undefined }): Partition {
    const key = record.key;
    if (key === undefined || key === null) return this.fallback.select(topic, partitions);
    return pick(topic, partitions, toPositive(murmur2(key)) % partitions.length);
  }
}

/**
 * A user function; its answer is checked to be one of the partitions offered, so a typo cannot send a record to a
 * partition the broker does not have.
 *
 * @example
 * ```ts
 * new FunctionSelector((_topic, ps) => ps[0]!).select('t', partitions, {});
 * ```
 */
export class FunctionSelector implements PartitionSelector {
  constructor(private readonly fn: Extract<PartitionSelectorOption, (...args: never[]) => unknown>) {}

  select(topic: string, partitions: readonly Partition[], record: { readonly key?: string | Buffer | undefined }): Partition {
    if (partitions.length === 0) throw new UnknownTopicError(topic);
    const chosen = this.fn(topic, partitions, record.key === undefined ? {} : { key: record.key });
    for (const p of partitions) {
      if (p === chosen || (p.brokerId === chosen?.brokerId && p.partition === chosen.partition)) return p;
    }
    throw new InvalidArgumentError(`the partition selector chose ${describe(chosen)} for topic ${topic}, ` +
      `which is not one of the ${partitions.length} partitions offered`);
  }
}

function pick(topic: string, partitions: readonly Partition[], index: number): Partition {
  const p = partitions[index];
  if (p === undefined) throw new UnknownTopicError(topic);
  return p;
}

function describe(p: Partition | undefined): string {
  return p === undefined || p === null ? String(p) : `${p.brokerId}-${p.partition}`;
}
