/**
 * `metaq brokers`: every broker id registered in ZooKeeper with its master and slaves, the master's config checksum,
 * and whether each node answers a `version` request within `--timeout`. A node that does not answer is reported, not
 * an error: the command fails (exit 1) only when ZooKeeper cannot be read.
 */
import { withCluster, processIo, type CliIo, type ClusterContext, type ClusterFlags } from './cluster-context.js';
import { readBrokers } from './cluster-reader.js';
import { formatTable } from './table.js';

/** One registered node and what it answered. */
export interface NodeStatus {
  readonly url: string;
  /** null for the master */
  readonly slaveId: number | null;
  readonly alive: boolean;
  readonly version: string | null;
  /** Why it is not alive. */
  readonly error: string | null;
}

export interface BrokersReport {
  readonly zkConnect: string;
  readonly zkRoot: string;
  readonly brokers: readonly {
    readonly id: number;
    readonly configChecksum: string | null;
    readonly master: NodeStatus | null;
    readonly slaves: readonly NodeStatus[];
  }[];
}

/** Reads the registrations and probes every node (in parallel). */
export async function brokersReport(ctx: ClusterContext): Promise<BrokersReport> {
  const probe = async (url: string, slaveId: number | null): Promise<NodeStatus> => {
    try {
      return { url, slaveId, alive: true, version: await ctx.brokers.version(url), error: null };
    } catch (e) {
      return { url, slaveId, alive: false, version: null, error: (e as Error).message };
    }
  };
  const brokers = await Promise.all((await readBrokers(ctx)).map(async (b) => ({
    id: b.id,
    configChecksum: b.configChecksum,
    master: b.master === null ? null : await probe(b.master, null),
    slaves: await Promise.all(b.slaves.map((s) => probe(s.url, s.slaveId))),
  })));
  return { zkConnect: ctx.connect, zkRoot: ctx.paths.root, brokers };
}

export function renderBrokers(report: BrokersReport): string {
  if (report.brokers.length === 0) return `no brokers registered under ${report.zkRoot}/brokers/ids (ZooKeeper ${report.zkConnect})\n`;
  const rows = report.brokers.flatMap((b) => {
    const nodes = [...(b.master === null ? [] : [b.master]), ...b.slaves];
    if (nodes.length === 0) return [[b.id, 'none', null, false, null, b.configChecksum, 'no master or slave registered']];
    return nodes.map((n) => [b.id, n.slaveId === null ? 'master' : `slave${n.slaveId}`, n.url, n.alive, n.version,
      n.slaveId === null ? b.configChecksum : null, n.error]);
  });
  return formatTable(['ID', 'ROLE', 'URL', 'ALIVE', 'VERSION', 'CONFIG_CHECKSUM', 'ERROR'], rows, { dropIfEmpty: ['ERROR'] });
}

export async function brokersCommand(flags: ClusterFlags, io: CliIo = processIo): Promise<number> {
  const report = await withCluster(flags, brokersReport);
  io.out(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : renderBrokers(report));
  return 0;
}
