/**
 * The broker's storage: every topic-partition log under the configured data paths, the shared flush cycle, the
 * interval-flush timers, the recovery-point checkpoint, retention on each topic's `deleteWhen` cron, and the disk
 * watermark.
 *
 * Open reads each data path's recovery-point checkpoint once and recovers every `<dataPath>/<topic>-<n>/`
 * directory (see recovery.ts: contiguity check, scan after the recovery point unless a clean-shutdown marker
 * matches, cuts logged and reported). While running, the checkpoint is rewritten at most once a second when a
 * durable offset moved. Close stores everything pending, writes the checkpoint, then the clean-shutdown markers,
 * and closes the files.
 */
import type { Logger } from 'pino';
import { InvalidArgumentError, ShuttingDownError, UnknownTopicError, WrongPartitionError } from '../../sdk/errors.js';
import { topicNameProblem } from '../../sdk/protocol/names.js';
import { findTopicConfig } from '../config/topic-match.js';
import type { BrokerConfig, TopicConfig } from '../config/broker-config.js';
import type { CronExpression } from './cron.js';
import { parseCron } from './cron.js';
import { DiskWatermark } from './disk-watermark.js';
import type { FileIO } from './file-io.js';
import { isErrno, joinPath, NodeFileIO } from './file-io.js';
import type { Failpoints } from './failpoints.js';
import { ChunkPool, Flusher } from './flusher.js';
import { PartitionLog } from './partition-log.js';
import type { PartitionLogDeps } from './partition-log.js';
import type { RecoveryCut } from './recovery.js';
import { recoverPartitionDir } from './recovery.js';
import { readRecoveryPoints, RecoveryPointFile } from './recovery-point-file.js';
import type { RetentionReport } from './retention.js';
import { applyRetention, emptyRetentionReport } from './retention.js';
import { CLEAN_SHUTDOWN_FILE, parsePartitionDirName, partitionDirName } from './segment-files.js';

export interface MessageStoreOptions {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  /** Default: {@link NodeFileIO}. */
  readonly fileIO?: FileIO;
  /** Wall clock for retention ages and cron schedules. Default Date.now. */
  readonly now?: () => number;
  /** Recovery progress: partitions done of total, and the one just loaded. */
  readonly onProgress?: (done: number, total: number, what: string) => void;
  readonly failpoints?: Failpoints;
}

/** What recovery found and did at open. */
export interface RecoveryReport {
  readonly partitions: number;
  /** Partitions opened on a matching clean-shutdown marker (not scanned). */
  readonly cleanPartitions: number;
  readonly scannedBytes: number;
  readonly scannedRecords: number;
  readonly cuts: readonly RecoveryCut[];
  readonly durationMs: number;
}

/** What {@link MessageStore.truncate} removed: the records in `[from, to)` of one partition. */
export interface TruncateReport {
  readonly topic: string;
  readonly partition: number;
  readonly from: number;
  readonly to: number;
  readonly bytes: number;
  readonly records: number;
}

const WATERMARK_EVERY_MS = 1500;
const CHECKPOINT_EVERY_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const TOPIC_CACHE_LIMIT = 10_000;

export class MessageStore {
  private config: BrokerConfig;
  private readonly logger: Logger;
  private readonly io: FileIO;
  private readonly now: () => number;
  private readonly watermark: DiskWatermark;
  private readonly deps: Omit<PartitionLogDeps, 'disk'>;
  private readonly dataPaths: readonly string[];
  private readonly recoveryPoints: RecoveryPointFile;
  private readonly logs = new Map<string, PartitionLog[]>();
  private readonly topicCache = new Map<string, TopicConfig | null>();
  private readonly timers: NodeJS.Timeout[] = [];
  private report: RecoveryReport = { partitions: 0, cleanPartitions: 0, scannedBytes: 0, scannedRecords: 0, cuts: [], durationMs: 0 };
  private closed = false;
  private retentionRun: Promise<RetentionReport> | null = null;

  private constructor(private readonly options: MessageStoreOptions) {
    this.config = options.config;
    this.logger = options.logger;
    this.io = options.fileIO ?? new NodeFileIO();
    this.now = options.now ?? Date.now;
    const sys = this.config.system;
    this.watermark = new DiskWatermark(this.io, sys.diskMaxUsedRatio, this.logger, options.failpoints);
    this.deps = {
      io: this.io, logger: this.logger, failpoints: options.failpoints, flusher: new Flusher(), pool: new ChunkPool(),
      maxSegmentSize: sys.maxSegmentSize, maxMessageSize: sys.maxMessageSize,
      onRoll: () => { void this.watermark.check(); },
    };
    this.dataPaths = [...new Set([sys.dataPath, ...this.config.topics.map((t) => t.dataPath)])];
    this.recoveryPoints = new RecoveryPointFile({ io: this.io, logger: this.logger, failpoints: options.failpoints,
      dataPaths: this.dataPaths });
  }

  /** Loads and recovers every partition directory of every data path. */
  static async open(options: MessageStoreOptions): Promise<MessageStore> {
    const store = new MessageStore(options);
    await store.load();
    return store;
  }

  /**
   * Called (synchronously, so keep it cheap) when the store gains its first partition of a topic, at open or later
   * through a put; the cluster registry uses it to register a topic first seen through a wildcard section.
   */
  onTopicAdded: ((topic: string) => void) | undefined;

  /** `fn(seconds)` after every segment fdatasync (metrics); replaces the previous observer. */
  observeFsync(fn: ((seconds: number) => void) | undefined): void {
    this.deps.flusher.onFsync = fn;
  }

  /** What recovery did at open. */
  get recoveryReport(): RecoveryReport {
    return this.report;
  }

  /**
   * Topic section matching `topic` (exact names first, then `*` wildcards in file order), or undefined when no
   * section accepts it or it is not a valid topic name (a topic becomes a directory name: no `/`, no `..`).
   */
  topicConfig(topic: string): TopicConfig | undefined {
    let tc = this.topicCache.get(topic);
    if (tc === undefined) {
      tc = topicNameProblem(topic) === undefined ? findTopicConfig(this.config, topic) ?? null : null;
      if (this.topicCache.size >= TOPIC_CACHE_LIMIT) this.topicCache.clear();
      this.topicCache.set(topic, tc);
    }
    return tc ?? undefined;
  }

  /**
   * The partition's log, created lazily (its directory and first segment are made by the first flush, so no await).
   * Throws UnknownTopicError, WrongPartitionError, ShuttingDownError. A new log starts at `startIfCreate` (an
   * async slave passes its master's first offset so that offsets stay identical).
   */
  getOrCreate(topic: string, partition: number, startIfCreate = 0): PartitionLog {
    const existing = this.logs.get(topic)?.[partition];
    if (existing !== undefined) return existing;
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    const tc = this.topicConfig(topic);
    if (tc === undefined) throw new UnknownTopicError(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= tc.numPartitions) {
      throw new WrongPartitionError(topic, partition, tc.numPartitions);
    }
    if (this.closed) throw new ShuttingDownError('message store');
    const dir = joinPath(tc.dataPath, partitionDirName(topic, partition));
    return this.add(new PartitionLog({ topic, partition, dir, config: tc, startOffset: startIfCreate },
      { ...this.deps, disk: this.watermark.stateFor(tc.dataPath) }));
  }

  /**
   * New topic sections (an async slave taking its master's): they apply to partitions created from now on;
   * existing partitions keep their settings until a restart.
   */
  useTopics(config: BrokerConfig): void {
    this.config = config;
    this.topicCache.clear();
  }

  get(topic: string, partition: number): PartitionLog | undefined {
    return this.logs.get(topic)?.[partition];
  }

  *partitions(): Iterable<PartitionLog> {
    for (const arr of this.logs.values()) for (const log of arr) if (log !== undefined) yield log;
  }

  /** Starts the background jobs: interval flush timers, the recovery-point checkpoint, retention crons, the disk watermark. */
  start(): void {
    if (this.closed || this.timers.length > 0) return;
    const intervals = new Set<number>();
    const crons = new Map<string, CronExpression>();
    for (const t of [...this.config.topics]) {
      if (t.unflushThreshold > 0 && t.unflushInterval > 0) intervals.add(t.unflushInterval);
      if (!crons.has(t.deleteWhen)) crons.set(t.deleteWhen, parseCron(t.deleteWhen));
    }
    for (const ms of intervals) {
      this.timers.push(setInterval(() => {
        for (const log of this.partitions()) {
          if (log.config.unflushThreshold > 0 && log.config.unflushInterval === ms) log.requestSync();
        }
      }, ms).unref());
    }
    for (const cron of crons.values()) this.scheduleCron(cron);
    this.timers.push(setInterval(() => { void this.watermark.check(); }, WATERMARK_EVERY_MS).unref());
    this.timers.push(setInterval(() => {
      // Failures are logged by the writer; the next turn tries again.
      if (!this.recoveryPoints.writing) void this.recoveryPoints.write(this.partitions()).catch(() => undefined);
    }, CHECKPOINT_EVERY_MS).unref());
  }

  /** Applies every partition's retention policy now (all partitions, or those whose deleteWhen is `cron`). */
  async runRetention(cron?: string): Promise<RetentionReport> {
    while (this.retentionRun !== null) await this.retentionRun.catch(() => undefined);
    const run = (async () => {
      const report = emptyRetentionReport();
      const now = this.now();
      for (const log of [...this.partitions()]) {
        if (cron === undefined || log.config.deleteWhen === cron) await applyRetention(log, now, this.io, this.logger, report);
      }
      return report;
    })();
    this.retentionRun = run;
    try { return await run; } finally { this.retentionRun = null; }
  }

  /** Checks the disk watermark now (the background job does it every 1.5 s). */
  checkDisk(): Promise<void> {
    return this.watermark.check();
  }

  /**
   * Writes the recovery-point checkpoint of every data path whose durable offsets moved since its last write
   * (after a write in progress). Rejects if a write failed.
   */
  checkpointAll(): Promise<void> {
    return this.recoveryPoints.write(this.partitions());
  }

  /**
   * Drops every byte of a partition at or after `offset` (a record boundary within [startOffset, endOffset]), e.g. the
   * divergent tail of a node rejoining as a slave. The caller makes sure no appends run; the partition refuses them
   * meanwhile. The recovery checkpoint is rewritten before any file changes and a clean-shutdown marker removed, so a
   * crash at any step leaves a log recovery opens (see PartitionLog.truncateTo). Logs the exact range cut at warn.
   * Throws InvalidArgumentError (no such partition, not a boundary), ShuttingDownError, FsyncFailedError (I/O failed:
   * the partition then refuses writes until a restart).
   */
  async truncate(topic: string, partition: number, offset: number): Promise<TruncateReport> {
    if (this.closed) throw new ShuttingDownError('message store');
    const log = this.get(topic, partition);
    if (log === undefined) throw new InvalidArgumentError(`cannot truncate ${topic}-${partition}: no such partition in this store`);
    while (this.retentionRun !== null) await this.retentionRun.catch(() => undefined);
    const range = await log.truncateTo(offset, async () => {
      await this.io.unlink(joinPath(log.dir, CLEAN_SHUTDOWN_FILE)).catch((e: unknown) => {
        if (!isErrno(e, 'ENOENT')) throw e;
      });
      await this.recoveryPoints.write(this.partitions());
    });
    if (this.closed) log.refuseAppends();
    const report: TruncateReport = { topic, partition, ...range };
    if (report.bytes > 0) this.logger.warn(report, 'truncated the log: records discarded');
    return report;
  }

  /** Refuses appends, stores everything pending (fsync), writes the checkpoint and clean-shutdown markers, closes files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
    const logs = [...this.partitions()];
    for (const log of logs) { log.refuseAppends(); log.requestSync(); }
    await Promise.all(logs.map((l) => l.idle()));
    if (this.retentionRun !== null) await this.retentionRun.catch(() => undefined);
    // Logged by the writer; a matching clean-shutdown marker makes the checkpoint unnecessary at the next open.
    await this.recoveryPoints.write(logs).catch(() => undefined);
    for (const log of logs) {
      try { await log.closeFiles(); } catch (e) {
        this.logger.error({ topic: log.topic, partition: log.partition, err: e }, 'partition not closed cleanly');
      }
    }
  }

  private add(log: PartitionLog): PartitionLog {
    let arr = this.logs.get(log.topic);
    const isNew = arr === undefined;
    if (arr === undefined) { arr = []; this.logs.set(log.topic, arr); }
    arr[log.partition] = log;
    if (isNew) this.onTopicAdded?.(log.topic);
    return log;
  }

  private async load(): Promise<void> {
    const t0 = performance.now();
    const found: { dir: string; topic: string; partition: number; tc: TopicConfig; checkpoint: number | undefined }[] = [];
    for (const dataPath of this.dataPaths) {
      await this.io.mkdir(dataPath);
      this.watermark.stateFor(dataPath);
      const points = await readRecoveryPoints(this.io, dataPath).catch((e: unknown) => {
        this.logger.warn({ dataPath, err: e }, 'recovery-point checkpoint ignored: scanning whole logs after an unclean stop');
        return undefined;
      });
      for (const name of (await this.io.readdir(dataPath)).sort()) {
        const parsed = parsePartitionDirName(name);
        const dir = joinPath(dataPath, name);
        if (parsed === undefined || !(await this.io.stat(dir)).isDirectory) continue;
        const tc = this.topicConfig(parsed.topic);
        if (tc === undefined || tc.dataPath !== dataPath) {
          this.logger.warn({ dir, topic: parsed.topic }, tc === undefined
            ? 'partition directory of a topic no section accepts: not loaded' : 'partition directory outside its topic dataPath: not loaded');
          continue;
        }
        found.push({ dir, ...parsed, tc, checkpoint: points?.get(name) });
      }
    }
    const cuts: RecoveryCut[] = [];
    let clean = 0; let scannedBytes = 0; let scannedRecords = 0; let done = 0;
    const loadOne = async (f: (typeof found)[number]): Promise<void> => {
      const rec = await recoverPartitionDir({ io: this.io, dir: f.dir, topic: f.topic, partition: f.partition,
        maxMessageSize: this.config.system.maxMessageSize, logger: this.logger, checkpoint: f.checkpoint });
      cuts.push(...rec.cuts);
      if (rec.clean) clean++;
      scannedBytes += rec.scannedBytes;
      scannedRecords += rec.scannedRecords;
      this.add(new PartitionLog({ topic: f.topic, partition: f.partition, dir: f.dir, config: f.tc, recovered: rec },
        { ...this.deps, disk: this.watermark.stateFor(f.tc.dataPath) }));
      this.options.onProgress?.(++done, found.length, f.dir);
    };
    const width = this.config.system.loadMessageStoresInParallel ? 4 : 1;
    for (let i = 0; i < found.length; i += width) await Promise.all(found.slice(i, i + width).map(loadOne));
    this.report = { partitions: found.length, cleanPartitions: clean, scannedBytes, scannedRecords, cuts,
      durationMs: Math.round(performance.now() - t0) };
    this.logger.info({ ...this.report, cuts: cuts.length }, 'message store recovered');
    // Rewritten before any append so that no entry outlives its directory: a partition directory deleted while the
    // broker was down and recreated later must not be scanned from the old directory's offset.
    await this.recoveryPoints.write(this.partitions()).catch(() => undefined);
    await this.watermark.check();
  }

  private scheduleCron(cron: CronExpression): void {
    const next = cron.next(this.now());
    if (next === null || this.closed) return;
    const arm = (): void => {
      const wait = next - this.now();
      const idx = this.timers.length;
      this.timers[idx] = setTimeout(() => {
        if (this.now() < next) { arm(); return; }
        void this.runRetention(cron.source)
          .catch((e: unknown) => this.logger.error({ err: e, cron: cron.source }, 'retention run failed'))
          .finally(() => this.scheduleCron(cron));
      }, Math.min(Math.max(wait, 0), MAX_TIMER_MS)).unref();
    };
    arm();
  }
}
