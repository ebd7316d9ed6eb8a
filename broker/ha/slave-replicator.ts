/**
 * Async replication, the slave side (MetaQ's metaslave plugin): a broker started with `system.slaveId >= 0`
 * replicates the master that has the same brokerId, as a consumer of it.
 *
 * - The master is found at `brokers/ids/<id>/master` (watched). Master gone: fetching stops (the slave keeps
 *   serving reads); master back, at any address: fetching resumes from the local ends.
 * - The master's partitions are those of its `brokers/topics-sub/<topic>/<id>-m` registrations (watched, so a
 *   topic or partition added later is picked up); each gets a {@link PartitionReplicator}.
 * - `autoSyncMasterConfig`: before fetching, and whenever `master_config_checksum` changes, the master's topic
 *   sections are taken (config-sync.ts).
 * - Lag: every second the master's `stats offsets` gives its ends; the lag is the bytes between them and the
 *   local ends (`stats replication`, the `metaq_replication_lag_bytes` gauge).
 *
 * The slave registers as `brokers/ids/<id>/slave<n>` with `topics-sub` nodes `<id>-s<n>` (BrokerRegistry) and
 * refuses puts (403): its logs must stay copies of the master's.
 */
import type { Logger } from 'pino';
import { ShuttingDownError } from '../../sdk/errors.js';
import { decodeTopicRegistration, ZkPaths } from '../../sdk/protocol/zk/zk-layout.js';
import type { ZkSession, ZkWatch } from '../../sdk/protocol/zk/zk-session.js';
import type { BrokerRegistry } from '../cluster/broker-registry.js';
import type { BrokerConfig, SystemConfig } from '../config/broker-config.js';
import type { BrokerContext, ReplicationStatus } from '../server/broker-context.js';
import type { MessageStore, TruncateReport } from '../store/message-store.js';
import { syncMasterConfig } from './config-sync.js';
import { MasterLink, readPartitionEnds } from './master-link.js';
import { PartitionReplicator, type ReplicaHost } from './partition-replicator.js';

export interface SlaveReplicatorOptions {
  readonly ctx: BrokerContext;
  /** The slave's registration: its ZooKeeper session is shared. */
  readonly registry: BrokerRegistry;
  readonly logger: Logger;
}

/** Why a slave refuses puts (the detail of its 403). */
export function slaveRefusal(brokerId: number, slaveId: number): string {
  return `this broker is slave ${slaveId} of broker ${brokerId} (async replication): it takes no puts, send to the master`;
}

/** Requests to the master wait at most this long (longer than any long poll of the master). */
const REQUEST_TIMEOUT_MS = 30_000;
const LAG_EVERY_MS = 1000;
const SYNC_RETRY_MS = 1000;

/** See the file comment. */
export class SlaveReplicator implements ReplicaHost, ReplicationStatus {
  readonly store: MessageStore;
  readonly logger: Logger;
  /** Kept through config syncs: they replace only the topic sections. */
  readonly system: SystemConfig;
  stopped = false;
  private config: BrokerConfig;
  private readonly session: ZkSession;
  private readonly paths: ZkPaths;
  private readonly brokerId: number;
  private readonly watches: ZkWatch[] = [];
  private readonly topicWatches = new Map<string, ZkWatch>();
  private readonly replicas = new Map<string, PartitionReplicator>();
  private readonly masterEnds = new Map<string, number>();
  /** The link partitions use: set once the master is up (and its config taken, with autoSyncMasterConfig). */
  private link: MasterLink | undefined;
  /** A link still taking the master's config; closed when the master moves or the slave stops. */
  private opening: MasterLink | undefined;
  private masterUrl: string | undefined;
  private linkWaiters: { resolve: (l: MasterLink) => void; reject: (e: Error) => void }[] = [];
  private readonly pauses = new Set<() => void>();
  private lagTimer: NodeJS.Timeout | undefined;
  private lastChecksum: string | undefined;
  private records = 0;
  private bytes = 0;
  private errors = 0;
  private configSyncs = 0;
  private tailCuts = 0;
  private tailCutBytes = 0;
  /** Records of the master's `sync` pushes stored (sync-handler.ts). */
  private pushes = 0;
  /**
   * Why this slave may not be promoted yet: its store's recovery cut data (or a divergent tail was cut) and it has
   * not caught up with the master since. A node that lost data must not become the master (the NATS lesson).
   */
  private catchUpReason: string | null = null;
  /** Whether the master answered the last `stats offsets` (undefined: not asked yet on this link). */
  private masterAnswers: boolean | undefined;

  private constructor(private readonly o: SlaveReplicatorOptions) {
    const sys = o.ctx.config.system;
    this.store = o.ctx.store;
    this.logger = o.logger.child({ component: 'slave', slaveId: sys.slaveId });
    this.system = sys;
    this.config = o.ctx.config;
    this.session = o.registry.session;
    this.paths = new ZkPaths(o.ctx.config.zookeeper.zkRoot);
    this.brokerId = sys.brokerId;
    const cuts = o.ctx.store.recoveryReport.cuts;
    if (cuts.length > 0) {
      this.mustCatchUp(`its recovery cut ${cuts.reduce((n, c) => n + c.bytes, 0)} bytes in ${cuts.length} place(s)`);
    }
  }

  /** Bars promotion until the local ends reach the master's ends again. */
  mustCatchUp(reason: string): void {
    this.catchUpReason ??= reason;
    this.logger.warn({ reason }, 'this slave is not promotable until it has caught up with its master');
  }

  /** Why a promotion must be refused now; null when it may go ahead. */
  promotionBar(): string | null {
    if (this.catchUpReason !== null) {
      return `${this.catchUpReason}, and it has not caught up with its master since (lag ${this.lagBytes()} bytes)`;
    }
    const link = this.link;
    // With a master that answers (or not known not to), a partition not yet compared with it may hold a tail to cut:
    // every partition the master reports must have been compared.
    if (link === undefined || this.masterAnswers === false) return null;
    if (this.masterAnswers === undefined) return 'it has not heard from its master yet';
    for (const key of this.masterEnds.keys()) {
      if (this.replicas.get(key)?.reconciledWith !== link) return 'it is still comparing its log with its master\'s';
    }
    return null;
  }

  /** Starts watching the master and replicating; {@link close} stops it. */
  static start(options: SlaveReplicatorOptions): SlaveReplicator {
    const r = new SlaveReplicator(options);
    options.ctx.replication = r;
    r.watches.push(r.session.watchData(r.paths.brokerMaster(r.brokerId), (node) => {
      const url = node?.data.toString('utf8').trim();
      r.onMaster(url === undefined || url === '' ? undefined : url);
    }));
    if (r.system.autoSyncMasterConfig) {
      r.watches.push(r.session.watchData(r.paths.brokerConfigChecksum(r.brokerId), (node) => {
        const sum = node?.data.toString('utf8').trim();
        if (sum === undefined || sum === r.lastChecksum) return;
        r.lastChecksum = sum;
        if (r.link !== undefined) void r.syncConfig(r.link);
      }));
    }
    r.watches.push(r.session.watchChildren(r.paths.topicRegistry('topics-sub'), (topics) => r.onTopics(topics ?? [])));
    r.lagTimer = setInterval(() => { void r.readMasterEnds(); }, LAG_EVERY_MS).unref();
    r.logger.info({ brokerId: r.brokerId, group: r.system.slaveGroup }, 'async slave started: replicating its master');
    return r;
  }

  // ---- ReplicaHost ----

  masterLink(): Promise<MasterLink> {
    if (this.stopped) return Promise.reject(new ShuttingDownError('slave replicator'));
    if (this.link !== undefined && !this.link.isClosed) return Promise.resolve(this.link);
    return new Promise((resolve, reject) => this.linkWaiters.push({ resolve, reject }));
  }

  replicated(records: number, bytes: number): void {
    this.records += records;
    this.bytes += bytes;
  }

  tailCut(report: TruncateReport): void {
    this.tailCuts++;
    this.tailCutBytes += report.bytes;
    this.mustCatchUp(`a divergent tail of ${report.topic}-${report.partition} was cut ([${report.from}, ${report.to}))`);
  }

  fetchFailed(): void {
    this.errors++;
  }

  /** Counts a `sync` push of the master stored (appended or found present). */
  pushStored(): void {
    this.pushes++;
  }

  /**
   * The fetch loop of (topic, partition), started here when the master's registrations have not named it yet (a
   * push proves the master has it); undefined once the slave stopped.
   */
  replicaFor(topic: string, partition: number): PartitionReplicator | undefined {
    if (this.stopped) return undefined;
    const key = `${topic}\u0000${partition}`;
    let r = this.replicas.get(key);
    if (r === undefined) {
      r = new PartitionReplicator(topic, partition, this);
      this.replicas.set(key, r);
    }
    return r;
  }

  pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(timer); this.pauses.delete(done); resolve(); };
      const timer = setTimeout(done, ms);
      this.pauses.add(done);
    });
  }

  // ---- ReplicationStatus ----

  lagBytes(): number {
    let lag = 0;
    for (const [key, end] of this.masterEnds) {
      const local = this.replicas.get(key)?.localEnd;
      if (local !== undefined) lag += Math.max(0, end - local);
    }
    return lag;
  }

  statsLines(): string[] {
    return [
      `slave_id ${this.system.slaveId}`,
      `master_url ${this.masterUrl ?? 'none'}`,
      `master_connected ${this.link !== undefined}`,
      `partitions ${this.replicas.size}`,
      `replicated_messages ${this.records}`,
      `replicated_bytes ${this.bytes}`,
      `pushed_messages ${this.pushes}`,
      `lag_bytes ${this.lagBytes()}`,
      `fetch_errors ${this.errors}`,
      `config_syncs ${this.configSyncs}`,
      `divergent_tails_cut ${this.tailCuts}`,
      `divergent_bytes_cut ${this.tailCutBytes}`,
      `promotable ${this.promotionBar() === null}`,
    ];
  }

  /** Stops fetching (requests in flight are dropped; nothing half-appended is left: appends are synchronous). */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.lagTimer);
    for (const w of [...this.watches, ...this.topicWatches.values()]) w.cancel();
    this.link?.close();
    this.link = undefined;
    this.opening?.close();
    for (const w of this.linkWaiters.splice(0)) w.reject(new ShuttingDownError('slave replicator'));
    for (const p of [...this.pauses]) p();
    await Promise.all([...this.replicas.values()].map((r) => r.done));
    this.logger.info({ records: this.records, bytes: this.bytes }, 'async slave stopped');
  }

  // ---- the master ----

  private onMaster(url: string | undefined): void {
    if (this.stopped || url === this.masterUrl) return;
    this.masterUrl = url;
    this.link?.close();
    this.link = undefined;
    this.opening?.close();
    this.opening = undefined;
    if (url === undefined) {
      this.logger.warn('master gone from ZooKeeper: replication paused, the slave keeps serving reads');
      return;
    }
    this.logger.info({ master: url }, 'master registered: replicating');
    const link = new MasterLink(url, REQUEST_TIMEOUT_MS);
    this.opening = link;
    void this.open(link);
  }

  /** Takes the master's config first (autoSyncMasterConfig), then lets the partitions fetch. */
  private async open(link: MasterLink): Promise<void> {
    if (this.system.autoSyncMasterConfig) {
      // A moved master or a stop closes the link (pause resolves at once then: the check must be here).
      while (!(await this.syncConfig(link)) && !link.isClosed) await this.pause(SYNC_RETRY_MS);
    }
    if (link.isClosed) return;
    this.opening = undefined;
    this.link = link;
    this.masterAnswers = undefined;
    this.masterEnds.clear();
    for (const w of this.linkWaiters.splice(0)) w.resolve(link);
    void this.readMasterEnds();
  }

  /** True when the master's config was compared (and taken if it differed). */
  private async syncConfig(link: MasterLink): Promise<boolean> {
    try {
      const next = await syncMasterConfig({ link, config: this.config, logger: this.logger });
      if (next !== undefined) {
        this.config = next;
        this.store.useTopics(next);
        this.configSyncs++;
        await this.o.registry.reloadTopics(next);
      }
      return true;
    } catch (err) {
      if (!this.stopped) this.logger.warn({ err }, 'taking the master\'s config failed');
      return false;
    }
  }

  // ---- the master's partitions ----

  private onTopics(topics: string[]): void {
    if (this.stopped) return;
    for (const topic of topics) {
      if (this.topicWatches.has(topic) || topic.includes('*')) continue;
      this.topicWatches.set(topic, this.session.watchData(this.paths.topicBroker('topics-sub', topic, this.brokerId),
        (node) => {
          if (node === undefined || this.stopped) return;
          try {
            this.ensurePartitions(topic, decodeTopicRegistration(node.data).numParts);
          } catch (err) {
            this.logger.warn({ err, topic }, 'unreadable topic registration of the master');
          }
        }));
    }
  }

  private ensurePartitions(topic: string, numParts: number): void {
    for (let p = 0; p < numParts; p++) this.replicaFor(topic, p);
  }

  /** The master's partition ends from `stats offsets` (`<topic> part <p> min_offset <a> max_offset <b>`). */
  private async readMasterEnds(): Promise<void> {
    const link = this.link;
    if (link === undefined || this.stopped) return;
    try {
      const ends = await readPartitionEnds(link);
      if (link === this.link) this.masterAnswers = true;
      for (const [key, end] of ends) this.masterEnds.set(key, end);
      // Caught up: every partition compared with this master (a divergent tail cut) and at its end.
      if (this.catchUpReason !== null && [...ends].every(([key, end]) => {
        const r = this.replicas.get(key);
        return end === 0 || (r !== undefined && r.reconciledWith === link && (r.localEnd ?? 0) >= end);
      })) {
        this.logger.info({ reason: this.catchUpReason }, 'caught up with the master: promotable again');
        this.catchUpReason = null;
      }
    } catch {
      // The fetch loops report the master's failures.
      if (link === this.link) this.masterAnswers = false;
    }
  }
}
