import type { Logger } from 'pino';
import type { BrokerConfig } from '../config/broker-config.js';
import type { IdWorker } from '../store/id-worker.js';
import type { MessageStore } from '../store/message-store.js';
import type { PartitionLog } from '../store/partition-log.js';
import type { BrokerStats } from './broker-stats.js';
import type { LongPoll } from './long-poll.js';
import type { ConsumerFilters } from '../filter/consumer-filters.js';
import type { TransactionManager } from '../transaction/transaction-manager.js';
import type { SyncMaster } from '../ha/sync-master.js';
import type { PromotionReport } from '../ha/promotion.js';

/** What the request handlers share: one per broker. */
export interface BrokerContext {
  readonly config: BrokerConfig;
  readonly store: MessageStore;
  readonly idWorker: IdWorker;
  readonly stats: BrokerStats;
  readonly longPoll: LongPoll;
  readonly logger: Logger;
  /** The bound TCP port (differs from the configured one when that is 0). */
  port: number;
  /** `meta://host:port`, used in error bodies as MetaQ does. */
  brokerUrl: string;
  /** The broker's version string (answer to `version`). */
  readonly version: string;
  /** CRC32 of the server.ini the broker started with (0 on embedded defaults); async slaves compare it. */
  readonly configChecksum: number;
  /** Server-side consumer filters (`group.<name>=<module>`); absent: none. */
  readonly filters?: ConsumerFilters;
  /** Local and XA transactions (the `transaction` command, puts with a transaction key); absent: refused. */
  transactions?: TransactionManager;
  /** Why puts are refused (403), e.g. this broker is an async slave; null when puts are accepted. */
  putRefusal: string | null;
  /** An async slave's replication state (stats `replication`, the lag gauge); null on a master. */
  replication: ReplicationStatus | null;
  /**
   * A master in sync replication: forwards each put to the slave and holds its ack until the slave stored it too;
   * null otherwise.
   */
  syncMaster: SyncMaster | null;
  /** On a slave in cluster mode: failover, makes it the master (`POST /api/ha/promote`). */
  promote?: () => Promise<PromotionReport>;
}

/** `cb` once the records appended to `log` so far are stored, and, in sync replication, on the slave too. */
export function whenAcked(ctx: BrokerContext, log: PartitionLog, cb: (err: Error | null) => void): void {
  if (ctx.syncMaster === null) log.whenStored(cb);
  else ctx.syncMaster.whenStored(log, cb);
}

/** What an async slave reports about its replication. */
export interface ReplicationStatus {
  /** Bytes the master holds that this slave has not stored yet (as of the last look at the master's offsets). */
  lagBytes(): number;
  /** `stats replication` lines: `<key> <value>`. */
  statsLines(): string[];
}
