/**
 * The options of the log4js appender, their defaults in one place, and their check. They arrive as a plain log4js
 * appender config (log4js deep-copies it, so only data belongs there, never live objects).
 */

/**
 * One appender section of a log4js config.
 *
 * @example
 * ```js
 * log4js.configure({
 *   appenders: { mq: { type: 'metaq/log4js', topic: 'app-logs', serverUrl: 'meta://127.0.0.1:8123' } },
 *   categories: { default: { appenders: ['mq'], level: 'info' } },
 * });
 * ```
 */
export interface MetaqAppenderConfig {
  readonly type?: unknown;
  /** The topic the events go to. Required. */
  readonly topic: string;
  /** A standalone broker, `meta://host:port`. Give this or `zkConnect`. */
  readonly serverUrl?: string;
  /** A cluster's ZooKeeper connect string (`host:port[,host:port...][/chroot]`). */
  readonly zkConnect?: string;
  /** ZooKeeper root of the cluster; default `/meta`. */
  readonly zkRoot?: string;
  /** A log4js layout for the `message` field, e.g. `{ type: 'pattern', pattern: '%m' }`; default messagePassThrough. */
  readonly layout?: { readonly type: string; readonly [key: string]: unknown };
  /** Events held at most (buffered and in flight together); default 10 000. */
  readonly bufferSize?: number;
  /** Bytes of encoded events held at most; default 8 MiB. */
  readonly bufferBytes?: number;
  /** Events sent together; a batch leaves when it is full or `lingerMs` after its first event; default 500. */
  readonly batchSize?: number;
  /** Longest wait for a batch to fill; default 20 ms. */
  readonly lingerMs?: number;
  /**
   * What a log call does when the buffer is full. `'drop'` (default): the new event is dropped and counted, the call
   * returns at once. `'block'`: the call waits (blocking the thread) up to `blockTimeoutMs` for room, then drops;
   * after such a timeout later calls drop without waiting until the buffer has drained to half.
   */
  readonly overflow?: 'drop' | 'block';
  /** Longest wait of one log call under `overflow: 'block'`; default 1000 ms. */
  readonly blockTimeoutMs?: number;
  /**
   * How events spread over partitions. `'category'` (default): by the hash of the category, so each category's
   * events stay in order in one partition. `'round-robin'`: over all partitions, no order. A number: that partition.
   */
  readonly partitioner?: 'category' | 'round-robin' | number;
  /** Reconnect backoff: first delay (default 100 ms), doubling with ±20% jitter up to `reconnectMaxMs`. */
  readonly reconnectInitialMs?: number;
  /** Largest reconnect delay; default 5000 ms. */
  readonly reconnectMaxMs?: number;
  /** Timeout of one send (then it is retried); default 5000 ms. */
  readonly sendTimeoutMs?: number;
  /** How long `log4js.shutdown` may take to deliver what is buffered; default 5000 ms. */
  readonly shutdownTimeoutMs?: number;
  /** Level of the appender's own diagnostics (pino, on stderr); default `'warn'`. */
  readonly logLevel?: string;
}

/** Defaults of {@link MetaqAppenderConfig}. */
export const APPENDER_DEFAULTS = {
  bufferSize: 10_000,
  bufferBytes: 8 * 1024 * 1024,
  batchSize: 500,
  lingerMs: 20,
  overflow: 'drop',
  blockTimeoutMs: 1_000,
  partitioner: 'category',
  reconnectInitialMs: 100,
  reconnectMaxMs: 5_000,
  sendTimeoutMs: 5_000,
  shutdownTimeoutMs: 5_000,
  logLevel: 'warn',
} as const;

/** The checked options, every default filled in: what the worker receives. */
export interface ResolvedAppenderOptions {
  readonly topic: string;
  readonly serverUrl: string | undefined;
  readonly zkConnect: string | undefined;
  readonly zkRoot: string | undefined;
  readonly bufferSize: number;
  readonly bufferBytes: number;
  readonly batchSize: number;
  readonly lingerMs: number;
  readonly overflow: 'drop' | 'block';
  readonly blockTimeoutMs: number;
  readonly partitioner: 'category' | 'round-robin' | number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  readonly sendTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: string;
}

/** Checks an appender config; throws a TypeError naming the bad key (log4js.configure then fails at startup). */
export function resolveAppenderOptions(config: MetaqAppenderConfig): ResolvedAppenderOptions {
  const d = APPENDER_DEFAULTS;
  if (typeof config.topic !== 'string' || config.topic.length === 0) fail('topic', 'a non-empty string', config.topic);
  const hasUrl = config.serverUrl !== undefined;
  const hasZk = config.zkConnect !== undefined;
  if (hasUrl === hasZk) {
    throw new TypeError('metaq/log4js: give serverUrl (meta://host:port) or zkConnect (host:port[,...]), exactly one');
  }
  const overflow = config.overflow ?? d.overflow;
  if (overflow !== 'drop' && overflow !== 'block') fail('overflow', "'drop' or 'block'", overflow);
  const partitioner = config.partitioner ?? d.partitioner;
  if (partitioner !== 'category' && partitioner !== 'round-robin' &&
      !(typeof partitioner === 'number' && Number.isInteger(partitioner) && partitioner >= 0)) {
    fail('partitioner', "'category', 'round-robin' or a partition number", partitioner);
  }
  const batchSize = count(config, 'batchSize', d.batchSize);
  const bufferSize = count(config, 'bufferSize', d.bufferSize);
  return {
    topic: config.topic,
    serverUrl: text(config, 'serverUrl'),
    zkConnect: text(config, 'zkConnect'),
    zkRoot: text(config, 'zkRoot'),
    bufferSize,
    bufferBytes: count(config, 'bufferBytes', d.bufferBytes),
    batchSize: Math.min(batchSize, bufferSize),
    lingerMs: millis(config, 'lingerMs', d.lingerMs),
    overflow,
    blockTimeoutMs: millis(config, 'blockTimeoutMs', d.blockTimeoutMs),
    partitioner,
    reconnectInitialMs: millis(config, 'reconnectInitialMs', d.reconnectInitialMs),
    reconnectMaxMs: millis(config, 'reconnectMaxMs', d.reconnectMaxMs),
    sendTimeoutMs: count(config, 'sendTimeoutMs', d.sendTimeoutMs),
    shutdownTimeoutMs: millis(config, 'shutdownTimeoutMs', d.shutdownTimeoutMs),
    logLevel: text(config, 'logLevel') ?? d.logLevel,
  };
}

type NumberKey = { [K in keyof MetaqAppenderConfig]-?: MetaqAppenderConfig[K] extends number | undefined ? K : never }[
  keyof MetaqAppenderConfig];

/** A positive integer option. */
function count(config: MetaqAppenderConfig, key: NumberKey, fallback: number): number {
  const v: unknown = config[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(key, 'a positive integer', v);
  return v;
}

/** A duration option: zero or more milliseconds. */
function millis(config: MetaqAppenderConfig, key: NumberKey, fallback: number): number {
  const v: unknown = config[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(key, 'a number of milliseconds >= 0', v);
  return v;
}

function text(config: MetaqAppenderConfig, key: 'serverUrl' | 'zkConnect' | 'zkRoot' | 'logLevel'): string | undefined {
  const v: unknown = config[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) fail(key, 'a non-empty string', v);
  return v;
}

function fail(key: string, wanted: string, got: unknown): never {
  throw new TypeError(`metaq/log4js: option ${key} must be ${wanted}, got ${JSON.stringify(got)}`);
}
