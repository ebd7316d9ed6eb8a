/**
 * The consumer's options with every default filled in (sdk/config.ts holds the defaults) and every value checked.
 */
import { randomUUID } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { loadBalanceStrategy, type LoadBalanceStrategy } from '../cluster/group/load-balance-strategy.js';
import { CONSUMER_DEFAULTS, type ConsumerOptions } from '../config.js';
import { Deserializers, type Deserializer } from '../codec/serializers.js';
import { ConfigError } from '../errors.js';
import type { Message } from '../message.js';
import { groupNameProblem } from '../protocol/names.js';

/**
 * {@link ConsumerOptions} resolved.
 *
 * @example
 * ```ts
 * const o: ResolvedConsumerOptions<Buffer> = resolveConsumerOptions({ group: 'billing' });
 * ```
 */
export interface ResolvedConsumerOptions<V> {
  /** The group as sent to brokers and stores (the per-host group in broadcast mode). */
  readonly group: string;
  readonly startFrom: 'earliest' | 'latest';
  readonly alwaysStartFromLatest: boolean;
  readonly fetchSize: number;
  readonly maxFetchSize: number;
  readonly fetchTimeoutMs: number;
  readonly maxFetchDelayMs: number;
  readonly maxInFlight: number;
  readonly partitionConcurrency: number;
  readonly commitIntervalMs: number;
  readonly maxFetchRetries: number;
  readonly recoverIntervalMs: number;
  readonly maxRecoverAttempts: number;
  readonly deadLetterTopic: (topic: string) => string;
  readonly filter: ((message: Message<V>) => boolean) | undefined;
  readonly dedupeCacheSize: number;
  readonly broadcast: boolean;
  readonly deserializer: Deserializer<V>;
  /** Cluster mode: the id in the group (`<local IP>-<pid>-<UUID>` unless given). */
  readonly consumerId: string;
  /** Cluster mode: the strategy named by the option. */
  readonly loadBalanceStrategy: LoadBalanceStrategy;
  readonly rebalanceRetries: number;
  readonly rebalanceBackoffMs: number;
}

/**
 * Fills in the defaults and checks every value; throws ConfigError naming the bad option.
 *
 * @example
 * ```ts
 * const o = resolveConsumerOptions({ group: 'billing', maxInFlight: 100 });
 * o.fetchSize; // 1048576
 * ```
 */
export function resolveConsumerOptions<V>(options: ConsumerOptions<V>): ResolvedConsumerOptions<V> {
  if (typeof options.group !== 'string') throw new ConfigError('consumer option group is required');
  const problem = groupNameProblem(options.group);
  if (problem !== undefined) throw new ConfigError(`consumer option group: ${problem}`);
  const d = CONSUMER_DEFAULTS;
  const broadcast = options.broadcast ?? d.broadcast;
  const o: ResolvedConsumerOptions<V> = {
    group: broadcast ? broadcastGroup(options.group) : options.group,
    startFrom: options.startFrom ?? d.startFrom,
    alwaysStartFromLatest: options.alwaysStartFromLatest ?? d.alwaysStartFromLatest,
    fetchSize: positive('fetchSize', options.fetchSize ?? d.fetchSize),
    maxFetchSize: positive('maxFetchSize', options.maxFetchSize ?? d.maxFetchSize),
    fetchTimeoutMs: positive('fetchTimeoutMs', options.fetchTimeoutMs ?? d.fetchTimeoutMs),
    maxFetchDelayMs: atLeast('maxFetchDelayMs', options.maxFetchDelayMs ?? d.maxFetchDelayMs, 0),
    maxInFlight: positive('maxInFlight', options.maxInFlight ?? d.maxInFlight),
    partitionConcurrency: positive('partitionConcurrency', options.partitionConcurrency ?? d.partitionConcurrency),
    commitIntervalMs: positive('commitIntervalMs', options.commitIntervalMs ?? d.commitIntervalMs),
    maxFetchRetries: atLeast('maxFetchRetries', options.maxFetchRetries ?? d.maxFetchRetries, 0),
    recoverIntervalMs: positive('recoverIntervalMs', options.recoverIntervalMs ?? d.recoverIntervalMs),
    maxRecoverAttempts: positive('maxRecoverAttempts', options.maxRecoverAttempts ?? d.maxRecoverAttempts),
    deadLetterTopic: options.deadLetterTopic ?? ((topic) => `${topic}.DLQ`),
    // The config declares the filter over Message<Buffer>; it sees this consumer's messages.
    filter: options.filter as ((message: Message<V>) => boolean) | undefined,
    dedupeCacheSize: atLeast('dedupeCacheSize', options.dedupeCacheSize ?? d.dedupeCacheSize, 0),
    broadcast,
    deserializer: options.deserializer ?? (Deserializers.buffer as unknown as Deserializer<V>),
    consumerId: options.consumerId ?? `${localIp()}-${process.pid}-${randomUUID()}`,
    loadBalanceStrategy: loadBalanceStrategy(options.loadBalanceStrategy ?? d.loadBalanceStrategy),
    rebalanceRetries: positive('rebalanceRetries', options.rebalanceRetries ?? d.rebalanceRetries),
    rebalanceBackoffMs: atLeast('rebalanceBackoffMs', options.rebalanceBackoffMs ?? d.rebalanceBackoffMs, 0),
  };
  // The id becomes a znode name and the data of owner nodes: MetaQ's group rules keep it a single path segment.
  const idProblem = groupNameProblem(o.consumerId.replace(/\./g, '-').replace(/:/g, '-'));
  if (idProblem !== undefined || o.consumerId.includes('/')) {
    throw new ConfigError(`consumer option consumerId ${JSON.stringify(o.consumerId)}: ${idProblem ?? 'contains /'}`);
  }
  if (o.maxFetchSize < o.fetchSize) {
    throw new ConfigError(`consumer option maxFetchSize (${o.maxFetchSize}) is smaller than fetchSize (${o.fetchSize})`);
  }
  if (o.startFrom !== 'earliest' && o.startFrom !== 'latest') {
    throw new ConfigError(`consumer option startFrom must be 'earliest' or 'latest', got ${JSON.stringify(o.startFrom)}`);
  }
  return o;
}

/**
 * MetaQ's broadcast group: `<group>-<local IP>` with `.` and `:` made `-`, so every host is a group of its own and
 * gets every message.
 *
 * @example
 * ```ts
 * broadcastGroup('cache-invalidation'); // 'cache-invalidation-10-0-0-7'
 * ```
 */
export function broadcastGroup(group: string, ip = localIp()): string {
  return `${group}-${ip.replace(/[.:]/g, '-')}`;
}

/**
 * The first non-internal IPv4 address (else IPv6, else loopback), as MetaQ's RemotingUtils.getLocalHost.
 *
 * @example
 * ```ts
 * localIp(); // '10.0.0.7'
 * ```
 */
export function localIp(): string {
  let v6: string | undefined;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') return a.address;
      // A zone id (`%eth0`) would put a forbidden character into the group name.
      v6 ??= a.address.replace(/%.*$/, '');
    }
  }
  return v6 ?? '127.0.0.1';
}

function positive(key: string, v: number): number {
  return atLeast(key, v, 1);
}

function atLeast(key: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`consumer option ${key} must be an integer >= ${min}, got ${v}`);
  return v;
}
