/**
 * Every option of the SDK with its default, in one place. Client, producer and consumer constructors take these
 * objects; `resolve*` fills in the defaults and checks the values (ConfigError naming the bad key).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CompressionType } from './codec/compression.js';
import type { Serializer, Deserializer } from './codec/serializers.js';
import type { Message, Partition } from './message.js';
import type { OffsetStore } from './offsets/offset-store.js';

/**
 * How a link reconnects after its connection dropped.
 *
 * @example
 * ```ts
 * // Fail requests for good after 10 attempts instead of waiting for the broker forever.
 * const client = await createClient({
 *   serverUrl: 'meta://127.0.0.1:8123',
 *   reconnect: { initialDelayMs: 200, maxDelayMs: 10_000, maxAttempts: 10 },
 * });
 * ```
 */
export interface ReconnectOptions {
  /** First delay before reconnecting; default 100 ms. Doubles per failed attempt (with ±20% jitter). */
  readonly initialDelayMs?: number;
  /** Largest delay between attempts; default 5000 ms. */
  readonly maxDelayMs?: number;
  /** Attempts before the link gives up and fails every request for good; default Infinity. */
  readonly maxAttempts?: number;
}

/**
 * Options of {@link createClient}.
 *
 * @example
 * ```ts
 * const client = await createClient({
 *   serverUrl: 'meta://127.0.0.1:8123',
 *   requestTimeoutMs: 5_000,
 *   recoverDir: '/var/lib/orders/metaq',   // outlives the process: the next one resends what was left here
 * });
 * ```
 */
export interface ClientOptions {
  /** A standalone broker, `meta://host:port` (direct connection, no ZooKeeper). */
  readonly serverUrl?: string;
  /**
   * ZooKeeper connect string (`host:port[,host:port...][/chroot]`) for cluster mode: brokers, topics and partitions
   * are discovered from ZooKeeper, consumer groups rebalance there and commit their offsets there.
   */
  readonly zkConnect?: string;
  /** ZooKeeper root; default `/meta`. */
  readonly zkRoot?: string;
  /** ZooKeeper session timeout; default 30 000 ms (MetaQ's). Ownerships of a dead consumer last this long. */
  readonly zkSessionTimeoutMs?: number;
  /** How long createClient waits for a ZooKeeper session; default 30 000 ms. */
  readonly zkConnectionTimeoutMs?: number;
  /** Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Default per-request timeout; default 10 000 ms. */
  readonly requestTimeoutMs?: number;
  /** A `version` request is sent after this long without traffic; default 5000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** A heartbeat unanswered for this long drops the connection (then it reconnects); default 3000 ms. */
  readonly heartbeatTimeoutMs?: number;
  readonly reconnect?: ReconnectOptions;
  /** Largest reply accepted from a broker; default 64 MiB. */
  readonly maxResponseBytes?: number;
  /** Directory of the recover store (failed messages) and the async producer's spool; default `~/.metaq/recover`. */
  readonly recoverDir?: string;
  /** File of the local offset store; default `~/.metaq/offsets.json`. */
  readonly offsetsFile?: string;
  /** pino logger; default: pino at level `warn` (or `$METAQ_LOG_LEVEL`) on stderr. */
  readonly logger?: Logger;
}

/**
 * How a producer picks a partition: by name, or a function of the record and the partitions available.
 *
 * @example
 * ```ts
 * client.producer({ partitioner: 'hash' });   // one key, one partition: per-key order
 * // A function decides anything else, e.g. keep a topic on its first partition:
 * client.producer({ partitioner: (_topic, partitions) => partitions[0]! });
 * ```
 */
export type PartitionSelectorOption =
  | 'round-robin'
  | 'random'
  | 'hash'
  | ((topic: string, partitions: readonly Partition[], record: { readonly key?: string | Buffer }) => Partition);

/**
 * Options of `client.producer()`.
 *
 * @example
 * ```ts
 * const producer = client.producer<Order>({
 *   partitioner: 'hash', serializer: Serializers.json, compression: CompressionTypes.GZIP,
 *   sendTimeoutMs: 3_000,   // fail fast to the caller instead of the client-wide 10 s
 * });
 * ```
 */
export interface ProducerOptions<V = Buffer | string> {
  /** Default `'round-robin'` (MetaQ's: the first send goes to the second partition). */
  readonly partitioner?: PartitionSelectorOption;
  /** Default: Buffer as is, strings as UTF-8. */
  readonly serializer?: Serializer<V>;
  /** Default `CompressionTypes.None`. */
  readonly compression?: CompressionType;
  /** Messages sent but not yet answered, per producer, before `send` waits; default 20 000. */
  readonly maxInFlight?: number;
  /** Per-send timeout; default the client's requestTimeoutMs. */
  readonly sendTimeoutMs?: number;
  /** Largest payload accepted before sending; default 1 MiB (the broker's default maxMessageSize). */
  readonly maxMessageSize?: number;
  /**
   * Cluster mode: a topic no broker registered is sent to the partitions of this topic instead (MetaQ's
   * `setDefaultTopic`; with `[topic=*]` on the brokers, `'*'` lets a producer send to any topic). Default none.
   */
  readonly defaultTopic?: string;
}

/**
 * Options of `client.asyncProducer()`: one-way sends that never block the caller.
 *
 * @example
 * ```ts
 * // A deeper spool rides out a longer broker outage before messages are dropped.
 * const logs = client.asyncProducer({ maxSpooled: 2_000_000, resendIntervalMs: 500 });
 * logs.send({ topic: 'app-logs', value: line });
 * ```
 */
export interface AsyncProducerOptions<V = Buffer | string> extends ProducerOptions<V> {
  /** Sliding window in permits (one per message, one more per 4 KiB); default 20 000. */
  readonly windowSize?: number;
  /** Messages spooled to disk per topic before new ones are dropped (and counted); default 500 000. */
  readonly maxSpooled?: number;
  /** How often the spool is resent while the broker is reachable; default 1000 ms. */
  readonly resendIntervalMs?: number;
}

/**
 * Options of `client.consumer()`.
 *
 * @example
 * ```ts
 * // A new group skips the backlog; 8 per partition trades per-partition order for throughput.
 * const consumer = client.consumer({ group: 'billing', startFrom: 'latest', partitionConcurrency: 8 });
 * consumer.subscribe('orders', async (m) => bill(m.value));
 * ```
 */
export interface ConsumerOptions<V = Buffer> {
  /** The consumer group (MetaQ's group rules: no whitespace, no `~!#$%^&*()+=\`'",;/?[]<>.:`). Required. */
  readonly group: string;
  /** Where offsets are committed; default a local file (`offsetsFile` of the client). */
  readonly offsetStore?: OffsetStore;
  /** Where a group without a committed offset starts; default `'earliest'`. */
  readonly startFrom?: 'earliest' | 'latest';
  /** Ignore committed offsets and start from the end at every start (MetaQ's alwaysConsumeFromMaxOffset). */
  readonly alwaysStartFromLatest?: boolean;
  /** Initial fetch size in bytes (MetaQ's maxSize); default 1 MiB. It doubles while a message does not fit. */
  readonly fetchSize?: number;
  /** Upper bound of the grown fetch size; default 64 MiB. */
  readonly maxFetchSize?: number;
  /** Per-fetch timeout (covers the broker's long poll); default 10 000 ms. */
  readonly fetchTimeoutMs?: number;
  /** Backoff cap when a partition has nothing new or fails; default 5000 ms (step 1/10 of it, as MetaQ). */
  readonly maxFetchDelayMs?: number;
  /** Messages delivered and not yet acked, over all partitions, before fetching pauses; default 1000. */
  readonly maxInFlight?: number;
  /** Messages of one partition in flight at once; default 1 (per-partition order). */
  readonly partitionConcurrency?: number;
  /** Offset commit period; default 5000 ms. Offsets are also committed on unsubscribe and close. */
  readonly commitIntervalMs?: number;
  /** In-line redeliveries of a failing message before it goes to the recover store; default 5. */
  readonly maxFetchRetries?: number;
  /** Period of the recover store's redelivery loop; default 300 000 ms (5 min, as MetaQ). */
  readonly recoverIntervalMs?: number;
  /** Redeliveries from the recover store before a message goes to the dead-letter topic; default 16. */
  readonly maxRecoverAttempts?: number;
  /** Dead-letter topic; default `<topic>.DLQ`. */
  readonly deadLetterTopic?: (topic: string) => string;
  /** Client-side filter: rejected messages are acked and never delivered. A throwing filter rejects. */
  readonly filter?: (message: Message) => boolean;
  /**
   * Size of MetaQ's message-id cache: a process-wide LRU of the (group, id) pairs processed (acked); a message found
   * in it is skipped (acked without delivery), so a partition that moves between consumers of one process, or a
   * consumer made again, does not deliver what the group already processed there. Default 0 = off (MetaQ: 4096):
   * every consumer already drops the offsets it saw processed, at no cost per message; the id cache costs a lookup
   * per message.
   */
  readonly dedupeCacheSize?: number;
  /** Broadcast mode: every consumer process gets every message (the group is made per host) */
  readonly broadcast?: boolean;
  /** Default: the payload Buffer as is. */
  readonly deserializer?: Deserializer<V>;
  /**
   * Cluster mode: this consumer's id in its group (MetaQ's consumerId); ZooKeeper shows it as `<group>_<consumerId>`.
   * Default `<local IP>-<pid>-<random UUID>`.
   */
  readonly consumerId?: string;
  /**
   * Cluster mode: how a group shares partitions. `'range'` (default, MetaQ's DEFAULT): consumers and partitions are
   * sorted as strings and each consumer takes a contiguous run. `'consistent-hash'` (MetaQ's CONSIST): a ketama ring
   * of the consumers, which moves fewer partitions when consumers come and go.
   */
  readonly loadBalanceStrategy?: 'range' | 'consistent-hash';
  /** Cluster mode: attempts of one rebalance before it gives up until the next change; default 7 (MetaQ's). */
  readonly rebalanceRetries?: number;
  /** Cluster mode: wait between rebalance attempts; default 1000 ms (MetaQ waits zkSyncTimeMs, 5000 ms). */
  readonly rebalanceBackoffMs?: number;
}

/**
 * Client option defaults.
 *
 * @example
 * ```ts
 * // Scale a default instead of copying its value, so it follows future changes.
 * const client = await createClient({ serverUrl: 'meta://127.0.0.1:8123',
 *   requestTimeoutMs: CLIENT_DEFAULTS.requestTimeoutMs * 3 });
 * ```
 */
export const CLIENT_DEFAULTS = {
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 3_000,
  reconnect: { initialDelayMs: 100, maxDelayMs: 5_000, maxAttempts: Infinity },
  maxResponseBytes: 64 * 1024 * 1024,
  recoverDir: join(homedir(), '.metaq', 'recover'),
  offsetsFile: join(homedir(), '.metaq', 'offsets.json'),
  zkRoot: '/meta',
  zkSessionTimeoutMs: 30_000,
  zkConnectionTimeoutMs: 30_000,
} as const;

/**
 * Producer option defaults.
 *
 * @example
 * ```ts
 * // A quarter of the usual pipeline, for a producer that must not crowd out others on the connection.
 * const producer = client.producer({ maxInFlight: PRODUCER_DEFAULTS.maxInFlight / 4 });
 * ```
 */
export const PRODUCER_DEFAULTS = {
  partitioner: 'round-robin',
  maxInFlight: 20_000,
  maxMessageSize: 1024 * 1024,
  windowSize: 20_000,
  maxSpooled: 500_000,
  resendIntervalMs: 1_000,
} as const;

/**
 * Consumer option defaults.
 *
 * @example
 * ```ts
 * // Commit 5x as often: a crash then redelivers less.
 * const consumer = client.consumer({ group: 'billing', commitIntervalMs: CONSUMER_DEFAULTS.commitIntervalMs / 5 });
 * ```
 */
export const CONSUMER_DEFAULTS = {
  startFrom: 'earliest',
  alwaysStartFromLatest: false,
  fetchSize: 1024 * 1024,
  maxFetchSize: 64 * 1024 * 1024,
  fetchTimeoutMs: 10_000,
  maxFetchDelayMs: 5_000,
  maxInFlight: 1_000,
  partitionConcurrency: 1,
  commitIntervalMs: 5_000,
  maxFetchRetries: 5,
  recoverIntervalMs: 300_000,
  maxRecoverAttempts: 16,
  dedupeCacheSize: 0,
  broadcast: false,
  loadBalanceStrategy: 'range',
  rebalanceRetries: 7,
  rebalanceBackoffMs: 1_000,
} as const;
