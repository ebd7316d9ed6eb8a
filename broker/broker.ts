import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import type { BrokerConfig } from './config/broker-config.js';
import type { Failpoints } from './store/failpoints.js';
import type { FileIO } from './store/file-io.js';
import { IdWorker } from './store/id-worker.js';
import { MessageStore } from './store/message-store.js';
import type { BrokerContext } from './server/broker-context.js';
import { BrokerServer } from './server/broker-server.js';
import { BrokerStats } from './server/broker-stats.js';
import { LongPoll } from './server/long-poll.js';

export interface StartBrokerOptions {
  readonly logger: Logger;
  /** Recovery progress, for a progress bar on a TTY. */
  readonly onProgress?: (done: number, total: number, what: string) => void;
  /** File layer for the store (tests inject a crash-simulating one). */
  readonly fileIO?: FileIO;
  readonly failpoints?: Failpoints;
}

/** A running broker. */
export interface Broker {
  /** The TCP port it listens on (the configured one, or the one picked for port 0). */
  readonly port: number;
  readonly config: BrokerConfig;
  readonly store: MessageStore;
  /**
   * Graceful shutdown: stops taking requests, answers every request already received (puts only once stored),
   * then flushes the store and writes its clean-shutdown marker. Idempotent.
   */
  close(): Promise<void>;
}

/** The package version, answered to `version`. */
export const BROKER_VERSION: string = (JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string }).version;

/** Opens (and recovers) the store, then starts serving the MetaQ protocol. */
export async function startBroker(config: BrokerConfig, options: StartBrokerOptions): Promise<Broker> {
  const { logger } = options;
  const sys = config.system;
  const store = await MessageStore.open({
    config,
    logger,
    ...(options.fileIO === undefined ? {} : { fileIO: options.fileIO }),
    ...(options.failpoints === undefined ? {} : { failpoints: options.failpoints }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  const ctx: BrokerContext = {
    config,
    store,
    idWorker: new IdWorker(sys.brokerId),
    stats: new BrokerStats(),
    longPoll: new LongPoll(),
    logger,
    port: sys.serverPort,
    brokerUrl: `meta://${sys.hostName}:${sys.serverPort}`,
    version: BROKER_VERSION,
    configChecksum: config.sourceFile === undefined ? 0 : crc32(readFileSync(config.sourceFile)) >>> 0,
  };
  const server = new BrokerServer(ctx);
  let port: number;
  try {
    port = await server.listen();
  } catch (err) {
    await store.close();
    throw err;
  }
  ctx.port = port;
  ctx.brokerUrl = `meta://${sys.hostName}:${port}`;
  store.start();
  logger.info({ port, brokerId: sys.brokerId, dataPath: sys.dataPath,
    flush: sys.unflushThreshold <= 0 ? 'group-commit' : `threshold ${sys.unflushThreshold}/${sys.unflushInterval}ms` },
  'broker started');

  let closing: Promise<void> | undefined;
  return {
    port,
    config,
    store,
    close: () => {
      closing ??= (async () => {
        logger.info('broker shutting down');
        await server.close(sys.shutdownTimeoutMs);
        await store.close();
        logger.info('broker stopped');
      })();
      return closing;
    },
  };
}
