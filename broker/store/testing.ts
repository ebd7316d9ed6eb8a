/**
 * Helpers for the store's tests and the reliability suite (not used by the broker): a complete BrokerConfig with
 * small sizes, a capturing pino logger, temp directories, and waiting with a deadline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import type { BrokerConfig, SystemConfig, TopicConfig } from '../config/broker-config.js';
import { parseDeletePolicy } from './retention.js';
export { rng } from '../../sdk/protocol/seeded-rng.js';

export interface TestConfigOptions {
  readonly system?: Partial<SystemConfig>;
  readonly topics?: readonly (Partial<TopicConfig> & { name: string })[];
}

/** A BrokerConfig with every default filled in; topics inherit system values as the config parser would do. */
export function makeTestConfig(dataPath: string, o: TestConfigOptions = {}): BrokerConfig {
  const system: SystemConfig = {
    brokerId: 0, hostName: '127.0.0.1', serverPort: 8123, dashboardHttpPort: 8120, dataPath, dataLogPath: dataPath,
    numPartitions: 1, unflushThreshold: 0, unflushInterval: 10_000, maxSegmentSize: 1024 * 1024,
    maxTransferSize: 1024 * 1024, getProcessThreadCount: 20, putProcessThreadCount: 20,
    deletePolicy: parseDeletePolicy('delete,168'), deleteWhen: '0 0 6,18 * * ?', quartzThreadCount: 5,
    maxCheckpoints: 3, checkpointInterval: 3_600_000, maxTxTimeoutTimerCapacity: 30_000, maxTxTimeoutInSeconds: 60,
    flushTxLogAtCommit: 1, acceptPublish: true, acceptSubscribe: true, stat: false, updateConsumerOffsets: false,
    loadMessageStoresInParallel: false, appClassPath: '', slaveId: -1, slaveGroup: 'meta-slave-group_-1',
    slaveMaxDelayInMills: 500, autoSyncMasterConfig: false, syncReplication: false, sendToSlaveTimeoutInMills: 5000,
    slaveContinuousFailureThreshold: 100, checkSlaveIntervalInMills: 1000, maxMessageSize: 1024 * 1024 - 20, maxLineBytes: 1024,
    longPollTimeoutMs: 0, idleTimeoutMs: 0, maxConnections: 1000, diskMaxUsedRatio: 0.99, shutdownTimeoutMs: 5000,
    bindHost: '127.0.0.1', ...o.system,
  };
  const topics = (o.topics ?? [{ name: '*' }]).map((t): TopicConfig => ({
    numPartitions: system.numPartitions, unflushThreshold: system.unflushThreshold,
    unflushInterval: system.unflushInterval, deletePolicy: system.deletePolicy, deleteWhen: system.deleteWhen,
    dataPath: system.dataPath, acceptPublish: true, acceptSubscribe: true, stat: false, groupFilters: new Map(), ...t,
  }));
  return {
    system,
    zookeeper: { zkEnable: false, zkConnect: '', zkSessionTimeoutMs: 30_000, zkConnectionTimeoutMs: 30_000, zkSyncTimeMs: 5000, zkRoot: '/meta' },
    topics,
  };
}

/** A pino logger keeping every entry (parsed) in `entries`. */
export function captureLogger(level = 'info'): { logger: Logger; entries: Record<string, unknown>[] } {
  const entries: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write(s: string) { entries.push(JSON.parse(s) as Record<string, unknown>); } });
  return { logger, entries };
}

export async function makeTempDir(prefix = 'metaq-store-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Polls `pred` until it is true; rejects after `timeoutMs` with `what`. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Promise form of PartitionLog.whenStored. */
export function stored(log: { whenStored(cb: (err: Error | null) => void): void }): Promise<void> {
  return new Promise((res, rej) => log.whenStored((e) => (e ? rej(e) : res())));
}


/** The seed from env var `name`, or a random one; printed so that a failure can be replayed. */
export function seedFrom(name: string): number {
  const s = process.env[name];
  const seed = s !== undefined && s !== '' ? Number(s) : Math.floor(Math.random() * 2 ** 31);
  process.stdout.write(`# ${name}=${seed}\n`);
  return seed;
}
