import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ConfigError, ErrorCodes, MetaqError } from '../sdk/errors.js';
import { BrokerRegistry } from './cluster/broker-registry.js';
import { ConsumerFilters } from './filter/consumer-filters.js';
import { SlaveReplicator, slaveRefusal } from './ha/slave-replicator.js';
import { promoteSlave, type PromotionReport } from './ha/promotion.js';
import { SyncMaster } from './ha/sync-master.js';
import type { BrokerConfig } from './config/broker-config.js';
import type { Failpoints } from './store/failpoints.js';
import type { FileIO } from './store/file-io.js';
import { startHttpServer, type HttpServer } from './http/http-server.js';
import { IdWorker } from './store/id-worker.js';
import { MessageStore } from './store/message-store.js';
import type { BrokerContext } from './server/broker-context.js';
import { BrokerServer } from './server/broker-server.js';
import { BrokerStats } from './server/broker-stats.js';
import { LongPoll } from './server/long-poll.js';
import { TransactionManager } from './transaction/transaction-manager.js';

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
  /** The HTTP port (gateway, JSON API, /metrics, dashboard): `system.dashboardHttpPort`, or the one picked for 0. */
  readonly httpPort: number;
  readonly config: BrokerConfig;
  readonly store: MessageStore;
  /** The ZooKeeper registration; undefined in standalone mode (`zk.zkEnable=false`). */
  readonly registry: BrokerRegistry | undefined;
  /** Failover: makes this slave the master (broker/ha/promotion.ts). Rejects on a master or an unpromotable slave. */
  promote(): Promise<PromotionReport>;
  /**
   * Graceful shutdown: in cluster mode first unregisters from ZooKeeper and waits `zk.zkSyncTimeMs` so that clients
   * notice; then closes the HTTP server (parked HTTP gets are answered at once); then stops taking requests,
   * answers every request already received (puts only once stored), flushes the store and writes its
   * clean-shutdown marker, and closes the ZooKeeper session. Idempotent.
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
  if (sys.syncReplication && !config.zookeeper.zkEnable) {
    throw new ConfigError('system.syncReplication needs ZooKeeper (zk.zkEnable=true): the master finds its slave there');
  }
  // Before recovery: a filter that cannot load is a config error, found without minutes of store scanning first.
  const filters = await ConsumerFilters.load(config, logger.child({ component: 'filter' }));
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
    filters,
    port: sys.serverPort,
    brokerUrl: `meta://${sys.hostName}:${sys.serverPort}`,
    version: BROKER_VERSION,
    configChecksum: config.sourceFile === undefined ? 0 : crc32(readFileSync(config.sourceFile)) >>> 0,
    putRefusal: sys.slaveId >= 0 ? slaveRefusal(sys.brokerId, sys.slaveId) : null,
    replication: null,
    syncMaster: null,
  };
  // What a failed start undoes, newest first (each step's part was started).
  const undo: (() => Promise<unknown>)[] = [() => store.close()];
  const step = async <T>(start: () => Promise<T>, stop: (started: T) => Promise<unknown>): Promise<T> => {
    let started: T;
    try {
      started = await start();
    } catch (err) {
      for (const u of undo.reverse()) await u();
      throw err;
    }
    undo.push(() => stop(started));
    return started;
  };
  // After the store's recovery (a journalled commit is completed into the recovered logs), before serving.
  ctx.transactions = await step(() => TransactionManager.open({ config, store, idWorker: ctx.idWorker, stats: ctx.stats,
    logger: logger.child({ component: 'tx' }), syncMaster: () => ctx.syncMaster }), (tm) => tm.close());
  const server = new BrokerServer(ctx);
  const port = await step(() => server.listen(), () => server.close(sys.shutdownTimeoutMs));
  ctx.port = port;
  ctx.brokerUrl = `meta://${sys.hostName}:${port}`;
  let registry: BrokerRegistry | undefined;
  const http: HttpServer = await step(
    () => startHttpServer({ ctx, registry: () => registry, logger: logger.child({ component: 'http' }) }), (h) => h.close());
  store.start();
  if (config.zookeeper.zkEnable) {
    // After listen: the registered URL must carry the bound port. A broker that cannot register does not start.
    registry = await step(() => BrokerRegistry.start({ config, store, brokerUrl: ctx.brokerUrl,
      configChecksum: ctx.configChecksum, logger }), (r) => r.close());
  }
  // A slave (system.slaveId >= 0) replicates its master through the registry's ZooKeeper session.
  let replicator = registry !== undefined && sys.slaveId >= 0 ? SlaveReplicator.start({ ctx, registry, logger }) : undefined;
  if (registry !== undefined && sys.syncReplication && sys.slaveId < 0) {
    ctx.syncMaster = SyncMaster.start({ system: sys, store, session: registry.session, zkRoot: config.zookeeper.zkRoot,
      registry, logger });
  }
  let promoting: Promise<PromotionReport> | undefined;
  const promote = (): Promise<PromotionReport> => {
    if (promoting !== undefined) return promoting;
    const r = replicator;
    if (r === undefined || registry === undefined) {
      return Promise.reject(new MetaqError(ErrorCodes.BROKER, `broker ${sys.brokerId} is not a slave: nothing to promote`));
    }
    promoting = promoteSlave({ ctx, registry, replicator: r, logger }).then((report) => {
      // A master now: a later promote is refused as on any master.
      replicator = undefined;
      promoting = undefined;
      return report;
    }, (err: unknown) => {
      promoting = undefined;
      throw err;
    });
    return promoting;
  };
  ctx.promote = promote;
  logger.info({ port, httpPort: http.port, brokerId: sys.brokerId, dataPath: sys.dataPath, cluster: registry !== undefined,
    flush: sys.unflushThreshold <= 0 ? 'group-commit' : `threshold ${sys.unflushThreshold}/${sys.unflushInterval}ms` },
  'broker started');

  let closing: Promise<void> | undefined;
  return {
    port,
    httpPort: http.port,
    config,
    store,
    registry,
    promote,
    close: () => {
      closing ??= (async () => {
        logger.info('broker shutting down');
        await replicator?.close();
        if (registry !== undefined) {
          await registry.unregister().catch((err: unknown) => logger.warn({ err }, 'unregistering from ZooKeeper failed'));
          // As MetaQ: give clients time to see the registration go before the socket closes.
          if (config.zookeeper.zkSyncTimeMs > 0) await sleep(config.zookeeper.zkSyncTimeMs);
        }
        await http.close();
        await server.close(sys.shutdownTimeoutMs);
        ctx.syncMaster?.close();
        await ctx.transactions?.close();
        await store.close();
        await registry?.close();
        logger.info('broker stopped');
      })();
      return closing;
    },
  };
}
