/**
 * How a consumer group shares a topic's partitions (MetaQ's LoadBalanceStrategy): every member runs the same pure
 * function over the same sorted lists, so all agree on one owner per partition without talking to each other.
 */
import { ConfigError } from '../../errors.js';
import { consistentHashStrategy } from './consistent-hash-strategy.js';
import { rangeStrategy } from './range-strategy.js';

/**
 * The partitions (`"<brokerId>-<n>"`) of `topic` that `consumer` should own, given every consumer of the group that
 * subscribes to the topic and every partition of the topic, both sorted as strings (`sortAsStrings`). An unknown
 * consumer gets none.
 *
 * @example
 * ```ts
 * const mine: LoadBalanceStrategy = (topic, me, consumers, partitions) => partitions.filter((_, i) => i % consumers.length === consumers.indexOf(me));
 * ```
 */
export type LoadBalanceStrategy = (topic: string, consumer: string, consumers: readonly string[],
  partitions: readonly string[]) => string[];

/** The strategies by the name used in ConsumerOptions.loadBalanceStrategy. */
export const LoadBalanceStrategies = {
  range: rangeStrategy,
  'consistent-hash': consistentHashStrategy,
} as const;
export type LoadBalanceStrategyName = keyof typeof LoadBalanceStrategies;

/**
 * The strategy of a name; throws ConfigError for an unknown one.
 *
 * @example
 * ```ts
 * loadBalanceStrategy('range')('t', 'g_a', ['g_a', 'g_b'], ['0-0', '0-1', '0-2']); // ['0-0', '0-1']
 * ```
 */
export function loadBalanceStrategy(name: string): LoadBalanceStrategy {
  const s = (LoadBalanceStrategies as Record<string, LoadBalanceStrategy | undefined>)[name];
  if (s === undefined) {
    throw new ConfigError(`consumer option loadBalanceStrategy must be one of ${Object.keys(LoadBalanceStrategies).join(', ')}, got ${JSON.stringify(name)}`);
  }
  return s;
}
