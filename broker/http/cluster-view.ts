/**
 * The cluster as ZooKeeper describes it, for /api/cluster, /api/groups and the consumer-lag metrics: the same
 * readers and the same per-group report as `metaq groups` (broker/cli/cluster), run over the broker's own
 * ZooKeeper session. Group reports ask every broker for its partition ends, so they are cached for a short time
 * and computed at most once at a time: dashboards and scrapers polling together cost one round per period.
 */
import { CoordinationError } from '../../sdk/errors.js';
import { ZkPaths } from '../../sdk/protocol/zk/zk-layout.js';
import type { BrokerRegistry } from '../cluster/broker-registry.js';
import { BrokerDirectory } from '../cli/cluster/broker-directory.js';
import type { ClusterContext } from '../cli/cluster/cluster-context.js';
import { readBrokers, readGroupNames, readTopicRegistrations, type BrokerInfo } from '../cli/cluster/cluster-reader.js';
import { groupReport, type GroupReport } from '../cli/cluster/groups-command.js';
import type { BrokerConfig } from '../config/broker-config.js';

export interface ClusterViewOptions {
  readonly config: BrokerConfig;
  /** The broker's registration, once made; undefined in standalone mode. */
  readonly registry: () => BrokerRegistry | undefined;
  /** How long a group report is reused. Default 2000 ms. */
  readonly cacheMs?: number;
  /** How long to wait for a broker's `stats offsets`. Default 3000 ms. */
  readonly brokerTimeoutMs?: number;
}

export class ClusterView {
  private readonly paths: ZkPaths;
  private readonly cacheMs: number;
  private readonly brokerTimeoutMs: number;
  private cached: { at: number; groups: Promise<GroupReport[]> } | undefined;

  constructor(private readonly options: ClusterViewOptions) {
    this.paths = new ZkPaths(options.config.zookeeper.zkRoot);
    this.cacheMs = options.cacheMs ?? 2000;
    this.brokerTimeoutMs = options.brokerTimeoutMs ?? 3000;
  }

  /** True when the broker runs with ZooKeeper (its registration may still be starting). */
  get enabled(): boolean {
    return this.options.config.zookeeper.zkEnable;
  }

  /** Every registered broker id with its master and slaves. Rejects when ZooKeeper cannot be read. */
  async brokers(): Promise<BrokerInfo[]> {
    return this.withContext((ctx) => readBrokers(ctx));
  }

  /** Every consumer group in full (members, partitions, owners, committed offsets, ends, lag); cached. */
  groups(): Promise<GroupReport[]> {
    const now = Date.now();
    if (this.cached !== undefined && now - this.cached.at < this.cacheMs) return this.cached.groups;
    const groups = this.withContext(async (ctx) => {
      const [brokers, registrations] = await Promise.all([readBrokers(ctx), readTopicRegistrations(ctx)]);
      const names = await readGroupNames(ctx);
      const reports = await Promise.all(names.map((g) => groupReport(ctx, g, { brokers, registrations }).catch((e: unknown) => {
        if (e instanceof CoordinationError && e.zkCode === 'NO_NODE') return undefined;
        throw e;
      })));
      // A group removed between the list and its read is simply gone.
      return reports.filter((r): r is GroupReport => r !== undefined);
    });
    const entry = { at: now, groups };
    this.cached = entry;
    // A failure is not cached: the next request asks ZooKeeper again.
    groups.catch(() => { if (this.cached === entry) this.cached = undefined; });
    return groups;
  }

  private async withContext<T>(body: (ctx: ClusterContext) => Promise<T>): Promise<T> {
    const registry = this.options.registry();
    if (registry === undefined) throw new Error('ZooKeeper registration not available (standalone mode, or still starting)');
    const brokers = new BrokerDirectory(this.brokerTimeoutMs);
    const ctx: ClusterContext = {
      zk: registry.session,
      paths: this.paths,
      connect: this.options.config.zookeeper.zkConnect,
      brokers,
      // The session is the broker's: only the broker connections opened here are closed.
      close: () => { brokers.close(); return Promise.resolve(); },
    };
    try {
      return await body(ctx);
    } finally {
      await ctx.close();
    }
  }
}
