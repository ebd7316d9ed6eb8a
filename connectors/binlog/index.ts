/**
 * The binlog connector: a publisher from MySQL/MariaDB row binlogs to a metaq topic, and a sink that applies that
 * stream to another MySQL/MariaDB server. README.md in this folder documents the envelope and the guarantees.
 */
export { BinlogPublisher, type BinlogPublisherOptions, type BinlogPublisherStats } from './binlog-publisher.js';
export {
  ChangeTypes, ENVELOPE_VERSION, parseEnvelope, type ChangeEnvelope, type ChangeType, type JsonValue, type RowImage,
} from './envelope.js';
export { PartitionModes, type PartitionMode } from './partitioning.js';
export { FilePositionStore, type BinlogPosition, type PositionStore } from './position-store.js';
export { BinlogServerCheckError, checkBinlogServer, type ServerFacts } from './server-check.js';
export { ReplicationSink, type ReplicationSinkOptions, type ReplicationSinkStats } from './replication-sink.js';
export { loadBinlogConfig, type BinlogConfig, type BinlogConfigOverrides, type ZkPositionConfig } from './config.js';
export { BinlogPublisherConflictError, ZkPositionStore, type ZkPositionStoreOptions } from './zk-position-store.js';
