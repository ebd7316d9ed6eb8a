import type { Logger } from 'pino';
import type { BrokerConfig } from '../config/broker-config.js';
import type { IdWorker } from '../store/id-worker.js';
import type { MessageStore } from '../store/message-store.js';
import type { BrokerStats } from './broker-stats.js';
import type { LongPoll } from './long-poll.js';

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
}
