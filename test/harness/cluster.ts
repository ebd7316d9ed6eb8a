/**
 * A small MetaQ cluster for tests: one private ZooKeeper and `n` brokers registered in it.
 *
 * ```ts
 * const cluster = await startCluster({ brokers: 2, numPartitions: 3 });
 * after(() => cluster.stop());
 * const client = await createClient({ zkConnect: cluster.zkConnect });
 * await cluster.brokers[1]!.stop();      // graceful: unregisters, keeps its data dir
 * await cluster.brokers[1]!.start();     // same id, same data dir (same port when it is still free)
 * const b2 = await cluster.addBroker();  // id 2
 * ```
 *
 * - ZooKeeper: started (and stopped by `stop()`) unless one is passed in `zk` (then the caller stops it).
 * - Brokers: ids 0..n-1, each with its own temp data dir, `system.hostName=127.0.0.1` (so the registered
 *   `meta://` URL is reachable), `zk.zkSyncTimeMs=0` (no sleep at shutdown), a 4 s ZooKeeper session (override
 *   with `set`), the embedded `[topic=*]` section (any topic; `numPartitions` partitions each, default 4).
 * - In-process by default (`broker` is the live {@link Broker}, `broker.registry.session` its ZooKeeper session);
 *   real `metaq server start` processes with `spawn: true` (`pid`, `process`, signals via `process.kill`).
 * - `set` takes `section.key` overrides for every broker (`{ 'zookeeper.zk.zkSessionTimeoutMs': '1500' }`);
 *   `addBroker(set)` adds per-broker ones on top.
 * - `stop()` stops every broker still running, ZooKeeper if it was started here, and removes the data dirs.
 * - After a crash (`process.kill('SIGKILL')`, spawn mode) `start()` works too: on its old port the broker waits for
 *   ZooKeeper to expire the dead run's session (up to 2x the session timeout) before registering.
 */
import pino from 'pino';
import { startBroker, type Broker } from '../../broker/broker.js';
import { embeddedConfig } from '../../broker/config/server-config.js';
import { spawnBroker, type BrokerProcess } from './broker-process.js';
import { tempDir } from './temp-dir.js';
import { waitFor } from './wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from './zookeeper.js';

export interface ClusterOptions {
  /** How many brokers to start (ids 0..n-1). Default 1. */
  readonly brokers?: number;
  /** An already running ZooKeeper to use (the caller stops it); default: a new one, stopped by `stop()`. */
  readonly zk?: ZooKeeperServer;
  /** Partitions per topic (`system.numPartitions`, inherited by `[topic=*]`). Default 4. */
  readonly numPartitions?: number;
  /** `section.key` overrides for every broker, applied last. */
  readonly set?: Readonly<Record<string, string>>;
  /** Real broker processes instead of in-process brokers. Default false. */
  readonly spawn?: boolean;
}

export interface ClusterBroker {
  readonly id: number;
  readonly dataDir: string;
  /** The port it listens on (of the latest start). */
  readonly port: number;
  /** `meta://127.0.0.1:<port>` */
  readonly url: string;
  readonly running: boolean;
  /** In-process mode: the live broker (undefined while stopped). */
  readonly broker: Broker | undefined;
  /** Spawn mode: the live process (undefined while stopped). */
  readonly process: BrokerProcess | undefined;
  /** Spawn mode: the live process's pid. */
  readonly pid: number | undefined;
  /** Graceful stop (unregisters from ZooKeeper); keeps the data dir. A stopped broker is fine. */
  stop(): Promise<void>;
  /** Starts it again on the same data dir, asking for the same port first. A running broker is fine. */
  start(): Promise<void>;
}

export interface Cluster {
  readonly zk: ZooKeeperServer;
  /** `127.0.0.1:<port>`: what clients pass as `zkConnect`. */
  readonly zkConnect: string;
  /** The brokers' zk.zkRoot (`/meta` unless overridden). */
  readonly zkRoot: string;
  readonly brokers: ClusterBroker[];
  /** Starts one more broker with the next id; `set` adds overrides for this broker only. */
  addBroker(set?: Readonly<Record<string, string>>): Promise<ClusterBroker>;
  /** Stops every broker, ZooKeeper when started here, and removes the brokers' data dirs. */
  stop(): Promise<void>;
}

/** Starts ZooKeeper (unless given) and the brokers; see the file comment. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const ownZk = options.zk === undefined;
  const zk = options.zk ?? await startZooKeeper();
  const brokers: ClusterBroker[] = [];
  const removers: (() => Promise<void>)[] = [];
  const common: Record<string, string> = {
    'system.hostName': '127.0.0.1',
    'system.numPartitions': String(options.numPartitions ?? 4),
    'zookeeper.zk.zkEnable': 'true',
    'zookeeper.zk.zkConnect': zk.connectString,
    'zookeeper.zk.zkSyncTimeMs': '0',
    'zookeeper.zk.zkSessionTimeoutMs': '4000',
    'zookeeper.zk.zkConnectionTimeoutMs': '10000',
    ...options.set,
  };
  const stop = async (): Promise<void> => {
    const errors: unknown[] = [];
    await Promise.all(brokers.map((b) => b.stop().catch((e: unknown) => { errors.push(e); })));
    if (ownZk) await zk.stop();
    for (const remove of removers) await remove();
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} broker(s) failed to stop`);
  };
  const addBroker = async (set: Readonly<Record<string, string>> = {}): Promise<ClusterBroker> => {
    const dir = await tempDir(`metaq-cluster-b${brokers.length}-`);
    removers.push(dir.remove);
    const b = clusterBroker(brokers.length, dir.path, { ...common, ...set }, options.spawn === true);
    brokers.push(b);
    await b.start();
    return b;
  };
  try {
    for (let i = 0; i < (options.brokers ?? 1); i++) await addBroker();
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return {
    zk,
    zkConnect: zk.connectString,
    zkRoot: common['zookeeper.zk.zkRoot'] ?? '/meta',
    brokers,
    addBroker,
    stop,
  };
}

function clusterBroker(id: number, dataDir: string, set: Record<string, string>, spawn: boolean): ClusterBroker {
  let port = 0;
  let broker: Broker | undefined;
  let proc: BrokerProcess | undefined;
  const overrides = (p: number): Record<string, string> => ({
    'system.brokerId': String(id), 'system.dataPath': dataDir, 'system.serverPort': String(p),
    'system.dashboardHttpPort': '0', ...set,
  });
  const startOn = async (p: number): Promise<void> => {
    if (spawn) {
      const { 'system.serverPort': _, 'system.dataPath': __, ...rest } = overrides(p);
      const pr = await spawnBroker({ dataDir, port: p, set: rest, startTimeoutMs: 30_000 });
      proc = pr;
      port = pr.port;
      // It answers `version` as soon as it listens; it is registered in ZooKeeper once it logs that it is ready.
      await waitFor(() => !pr.alive() || pr.logRecords('metaq server ready').length > 0,
        { timeoutMs: 60_000, what: `broker ${id} (pid ${pr.pid}) to register` });
      if (!pr.alive()) throw new Error(`broker ${id} exited during start:\n${pr.logs().slice(-4000)}`);
    } else {
      broker = await startBroker(embeddedConfig(overrides(p)), {
        logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }).child({ brokerId: id }),
      });
      port = broker.port;
    }
  };
  return {
    id,
    dataDir,
    get port() { return port; },
    get url() { return `meta://127.0.0.1:${port}`; },
    get running() { return spawn ? proc?.alive() === true : broker !== undefined; },
    get broker() { return broker; },
    get process() { return proc; },
    get pid() { return proc?.pid; },
    stop: async () => {
      const b = broker;
      const pr = proc;
      broker = undefined;
      proc = undefined;
      await b?.close();
      if (pr !== undefined) await pr.stop();
    },
    start: async () => {
      if (broker !== undefined || proc?.alive() === true) return;
      if (port === 0) {
        await startOn(0);
        return;
      }
      // Same port when it is still free (clients holding the old URL reconnect), else any port.
      await startOn(port).catch(() => startOn(0));
    },
  };
}
