/**
 * Every key `server.ini` accepts, with its type, bounds, default and meaning: the ONE place where the
 * configuration is documented (conf/server.ini repeats it for humans; a test checks they agree).
 *
 * Values of `int` and `number` keys may be arithmetic (`1024*1024`), as MetaQ's Aviator allows. A blank
 * value means "not set": the default applies ([system], [zookeeper]) or the [system] value ([topic=...]).
 * Relative paths are resolved against the working directory, as MetaQ does.
 */

export interface KeySpec {
  readonly kind: 'int' | 'number' | 'bool' | 'string';
  /** Default as it would be written in the file; null when required or computed (the doc says how). */
  readonly default: string | null;
  readonly min?: number;
  readonly max?: number;
  readonly doc: string;
  /** Also allowed in `[topic=<name>]` sections, falling back to [system] when absent. */
  readonly perTopic?: true;
  /** Ours: MetaQ 1.4 has no such key. */
  readonly ours?: true;
}

const INT32_MAX = 2147483647;

export const SYSTEM_KEYS = {
  brokerId: { kind: 'int', default: null, min: 0, max: 1023,
    doc: 'Required. Unique in the cluster (a master and its slaves share it); 10 bits of every message id.' },
  hostName: { kind: 'string', default: null,
    doc: 'Address published in ZooKeeper. Default: the first non-internal IPv4 address (127.0.0.1 if none).' },
  serverPort: { kind: 'int', default: '8123', min: 0, max: 65535,
    doc: 'TCP port of the MetaQ protocol. 0 picks a free port (tests).' },
  dashboardHttpPort: { kind: 'int', default: '8120', min: 0, max: 65535,
    doc: 'HTTP port of the dashboard, the HTTP API and /metrics. 0 picks a free port (tests).' },
  dataPath: { kind: 'string', default: null, perTopic: true,
    doc: 'Directory of the partition logs. Default: ~/meta.' },
  dataLogPath: { kind: 'string', default: null,
    doc: 'Directory of the transaction journal (transactions/). Default: dataPath.' },
  appClassPath: { kind: 'string', default: '',
    doc: 'Where server-side consumer filters named by group.<name> are loaded from.' },
  numPartitions: { kind: 'int', default: '1', min: 1, max: 65535, perTopic: true,
    doc: 'Partitions of a topic on this broker.' },
  unflushThreshold: { kind: 'int', default: '1000', min: -INT32_MAX, max: INT32_MAX, perTopic: true,
    doc: 'Messages between fsyncs. <= 0 selects group commit: a put is answered after the fsync covering it.' },
  unflushInterval: { kind: 'int', default: '10000', min: 1, max: INT32_MAX, perTopic: true,
    doc: 'Milliseconds between fsyncs when unflushThreshold > 0.' },
  maxSegmentSize: { kind: 'int', default: '1073741824', min: 1, max: INT32_MAX,
    doc: 'A segment file rolls once it reaches this many bytes.' },
  maxTransferSize: { kind: 'int', default: '1048576', min: 21, max: INT32_MAX,
    doc: 'Cap on the bytes one get returns (and on a group-commit batch, with 512 KiB).' },
  getProcessThreadCount: { kind: 'int', default: null, min: 1, max: 65535,
    doc: 'Concurrency of get/offset processing. Default: 10 x CPUs.' },
  putProcessThreadCount: { kind: 'int', default: null, min: 1, max: 65535,
    doc: 'Concurrency of put/transaction processing. Default: 10 x CPUs.' },
  deletePolicy: { kind: 'string', default: 'delete,168', perTopic: true,
    doc: "Retention: 'delete,<age>' or 'archive,<age>[,zip]'; age in hours, or with an s/m/h suffix." },
  deleteWhen: { kind: 'string', default: '0 0 6,18 * * ?', perTopic: true,
    doc: 'Quartz cron (sec min hour day-of-month month day-of-week [year]) of the retention run.' },
  quartzThreadCount: { kind: 'int', default: '5', min: 1, max: 1024,
    doc: 'Concurrency of retention runs.' },
  maxCheckpoints: { kind: 'int', default: '3', min: 1, max: 1024,
    doc: 'Transaction journal checkpoints kept.' },
  checkpointInterval: { kind: 'int', default: '3600000', min: 1,
    doc: 'Milliseconds between transaction journal checkpoints.' },
  maxTxTimeoutTimerCapacity: { kind: 'int', default: '30000', min: 1, max: INT32_MAX,
    doc: 'Most transactions with a pending timeout.' },
  maxTxTimeoutInSeconds: { kind: 'int', default: '60', min: 1, max: INT32_MAX,
    doc: 'Upper bound of a transaction timeout.' },
  flushTxLogAtCommit: { kind: 'int', default: '1', min: 0, max: 2,
    doc: 'Transaction journal fsync: 0 left to the OS, 1 at every commit, 2 every second.' },
  acceptPublish: { kind: 'bool', default: 'true', perTopic: true,
    doc: 'false: not registered for producers (no topics-pub node), puts refused.' },
  acceptSubscribe: { kind: 'bool', default: 'true', perTopic: true,
    doc: 'false: not registered for consumers (no topics-sub node), gets refused.' },
  stat: { kind: 'bool', default: 'false', perTopic: true,
    doc: 'Keep realtime per-topic statistics.' },
  updateConsumerOffsets: { kind: 'bool', default: 'false',
    doc: 'A get beyond the end answers 301 with the max offset instead of 404 (keep false in production).' },
  loadMessageStoresInParallel: { kind: 'bool', default: 'false',
    doc: 'Open (and recover) partitions concurrently at start.' },
  slaveId: { kind: 'int', default: '-1', min: -1, max: 1023,
    doc: 'Async replication: >= 0 runs this broker as slave <n> of the master with the same brokerId (puts refused). -1: a master.' },
  slaveGroup: { kind: 'string', default: null,
    doc: 'Consumer group name the slave fetches from its master with. Default: meta-slave-group_<slaveId>.' },
  slaveMaxDelayInMills: { kind: 'int', default: '500', min: 1, max: INT32_MAX,
    doc: 'Slave: longest pause between fetches at the end of a master partition when the master does not long-poll.' },
  autoSyncMasterConfig: { kind: 'bool', default: 'false',
    doc: "Slave: take the master's topic sections (stats config) when its master_config_checksum changes." },
  syncReplication: { kind: 'bool', default: 'false', ours: true,
    doc: 'Master: forward each put to the slave (sync command) and answer only once both stored it. A promoted slave keeps the setting.' },
  sendToSlaveTimeoutInMills: { kind: 'int', default: '5000', min: 1, max: INT32_MAX,
    doc: 'Sync replication: a put the slave has not confirmed within this is answered 500 (it stays in the master log).' },
  slaveContinuousFailureThreshold: { kind: 'int', default: '100', min: 1, max: INT32_MAX,
    doc: 'Sync replication: after this many consecutive slave failures the master withdraws its topics-pub registrations.' },
  checkSlaveIntervalInMills: { kind: 'int', default: '1000', min: 10, max: INT32_MAX,
    doc: 'Sync replication: how often a master that withdrew checks whether its slave has caught up (then registers again).' },
  maxMessageSize: { kind: 'int', default: null, min: 1, max: INT32_MAX, ours: true,
    doc: 'Largest message DATA (attribute + payload) accepted. Default and upper bound: maxTransferSize - 20.' },
  maxLineBytes: { kind: 'int', default: '4096', min: 64, max: 1048576, ours: true,
    doc: 'Longest request header line; a longer one closes the connection as malformed.' },
  longPollTimeoutMs: { kind: 'int', default: '2000', min: 0, max: 600000, ours: true,
    doc: 'How long a get at the end of the log waits for new data before answering 404. 0 disables.' },
  idleTimeoutMs: { kind: 'int', default: '600000', min: 0, max: INT32_MAX, ours: true,
    doc: 'Idle connections (nothing in flight, nothing received) are closed after this. 0 disables.' },
  maxConnections: { kind: 'int', default: '10000', min: 1, max: 1000000, ours: true,
    doc: 'Connections beyond this are refused.' },
  diskMaxUsedRatio: { kind: 'number', default: '0.95', min: 0.01, max: 1, ours: true,
    doc: 'Writes are refused (reads go on) while the data filesystem is fuller than this.' },
  shutdownTimeoutMs: { kind: 'int', default: '10000', min: 0, max: INT32_MAX, ours: true,
    doc: 'How long a graceful shutdown waits for in-flight puts to be stored and answered.' },
  bindHost: { kind: 'string', default: '0.0.0.0', ours: true,
    doc: 'Address the protocol and HTTP servers listen on.' },
} as const satisfies Record<string, KeySpec>;

export const ZOOKEEPER_KEYS = {
  'zk.zkEnable': { kind: 'bool', default: 'true',
    doc: 'Register in ZooKeeper. false: a standalone broker (direct-connect clients, offsets in a local file).' },
  'zk.zkConnect': { kind: 'string', default: null,
    doc: "ZooKeeper servers 'host:port[,host:port...][/chroot]'. Required when zk.zkEnable=true." },
  'zk.zkSessionTimeoutMs': { kind: 'int', default: '30000', min: 1, max: INT32_MAX,
    doc: 'ZooKeeper session timeout.' },
  'zk.zkConnectionTimeoutMs': { kind: 'int', default: '30000', min: 1, max: INT32_MAX,
    doc: 'How long to wait for a ZooKeeper connection.' },
  'zk.zkSyncTimeMs': { kind: 'int', default: '5000', min: 0, max: INT32_MAX,
    doc: 'Time given to ZooKeeper to propagate a change (e.g. after unregistering at shutdown).' },
  'zk.zkRoot': { kind: 'string', default: '/meta',
    doc: 'Root znode of the MetaQ layout.' },
} as const satisfies Record<string, KeySpec>;

export type SystemKey = keyof typeof SYSTEM_KEYS;
export type ZookeeperKey = keyof typeof ZOOKEEPER_KEYS;

/** Keys a `[topic=<name>]` section may set (besides `group.<name>`). */
export const TOPIC_KEYS: readonly SystemKey[] = (Object.keys(SYSTEM_KEYS) as SystemKey[])
  .filter((k) => (SYSTEM_KEYS[k] as KeySpec).perTopic === true);

/** `group.<groupName>=<filter>` in a topic section: the server-side message filter of that consumer group. */
export const GROUP_FILTER_PREFIX = 'group.';

export const SECTION_SYSTEM = 'system';
export const SECTION_ZOOKEEPER = 'zookeeper';
export const TOPIC_SECTION_PREFIX = 'topic=';
