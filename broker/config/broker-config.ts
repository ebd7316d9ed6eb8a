/**
 * The broker's resolved configuration: MetaQ 1.4's `server.ini` sections and keys, plus the few keys of
 * ours that MetaQ lacks (marked "ours"). Every default lives here, in one place.
 *
 * Durations are milliseconds, sizes bytes. `server-config.ts` parses `server.ini` into this shape.
 */

/** Retention policy of a topic: `delete,<age>` or `archive,<age>[,zip]`. */
export interface DeletePolicy {
  readonly kind: 'delete' | 'archive';
  /** Segments whose file is older than this (by mtime) may go. */
  readonly maxAgeMs: number;
  /** archive only: zip the segment instead of renaming it to `.arc`. */
  readonly compress: boolean;
  /** The text it was parsed from, e.g. `delete,168`. */
  readonly source: string;
}

/** Per-topic settings; each falls back to `[system]` when the topic section leaves it out. */
export interface TopicConfig {
  /** The section name after `topic=`; may contain `*` wildcards. */
  readonly name: string;
  readonly numPartitions: number;
  readonly unflushThreshold: number;
  readonly unflushInterval: number;
  readonly deletePolicy: DeletePolicy;
  /** Quartz-style cron expression (seconds minutes hours day-of-month month day-of-week [year]). */
  readonly deleteWhen: string;
  readonly dataPath: string;
  readonly acceptPublish: boolean;
  readonly acceptSubscribe: boolean;
  readonly stat: boolean;
  /** `group.<name>=<filter>` entries: server-side filters by consumer group. */
  readonly groupFilters: ReadonlyMap<string, string>;
}

export interface SystemConfig {
  readonly brokerId: number;
  readonly hostName: string;
  readonly serverPort: number;
  readonly dashboardHttpPort: number;
  readonly dataPath: string;
  readonly dataLogPath: string;
  readonly numPartitions: number;
  /** Messages between flushes; `<= 0` selects group commit (ack after the fsync covering the record). */
  readonly unflushThreshold: number;
  /** Milliseconds between flushes in threshold/interval mode. */
  readonly unflushInterval: number;
  readonly maxSegmentSize: number;
  /** Cap on the bytes one `get` returns. */
  readonly maxTransferSize: number;
  readonly getProcessThreadCount: number;
  readonly putProcessThreadCount: number;
  readonly deletePolicy: DeletePolicy;
  readonly deleteWhen: string;
  readonly quartzThreadCount: number;
  readonly maxCheckpoints: number;
  readonly checkpointInterval: number;
  readonly maxTxTimeoutTimerCapacity: number;
  readonly maxTxTimeoutInSeconds: number;
  readonly flushTxLogAtCommit: number;
  readonly acceptPublish: boolean;
  readonly acceptSubscribe: boolean;
  readonly stat: boolean;
  /** A get beyond the max offset answers 301 with the max instead of 404. */
  readonly updateConsumerOffsets: boolean;
  readonly loadMessageStoresInParallel: boolean;
  readonly appClassPath: string;
  /** Async replication: this broker's slave number (>= 0), or -1 for a master. */
  readonly slaveId: number;
  /** The group name a slave fetches with (`meta-slave-group_<slaveId>` by default). */
  readonly slaveGroup: string;
  /** Longest pause of a slave's fetch loop at the end of a partition when the master answers 404 at once. */
  readonly slaveMaxDelayInMills: number;
  /** A slave takes the master's topic sections when the master's config checksum changes. */
  readonly autoSyncMasterConfig: boolean;
  /** Sync replication (master): puts are answered once the slave stored them too. */
  readonly syncReplication: boolean;
  readonly sendToSlaveTimeoutInMills: number;
  readonly slaveContinuousFailureThreshold: number;
  readonly checkSlaveIntervalInMills: number;
  // ---- ours ----
  /** Largest accepted message DATA (attribute + payload); default `maxTransferSize - 20` so it can be fetched. */
  readonly maxMessageSize: number;
  /** Longest request header line accepted before the connection is closed as malformed. */
  readonly maxLineBytes: number;
  /** How long a `get` at the end of the log waits for new data before answering 404. 0 disables. */
  readonly longPollTimeoutMs: number;
  /** Connections idle (no request in flight, nothing received) for this long are closed. 0 disables. */
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  /** Writes are refused (DiskFullError) when the data filesystem is fuller than this ratio. */
  readonly diskMaxUsedRatio: number;
  /** How long a graceful shutdown waits for in-flight puts to be stored and answered. */
  readonly shutdownTimeoutMs: number;
  /** Address the TCP server binds to. */
  readonly bindHost: string;
}

export interface ZookeeperConfig {
  readonly zkEnable: boolean;
  readonly zkConnect: string;
  readonly zkSessionTimeoutMs: number;
  readonly zkConnectionTimeoutMs: number;
  readonly zkSyncTimeMs: number;
  readonly zkRoot: string;
}

export interface BrokerConfig {
  readonly system: SystemConfig;
  readonly zookeeper: ZookeeperConfig;
  /** Topic sections in file order. Exact names are matched before wildcards. */
  readonly topics: readonly TopicConfig[];
  /** Path of the ini file it came from, if any (for `stats config` and reload). */
  readonly sourceFile?: string;
  /** Command-line overrides (`section.key` → value) applied on top of the file; re-applied by a reload. */
  readonly overrides?: Readonly<Record<string, string>>;
}
