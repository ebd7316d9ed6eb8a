/**
 * `metaq topics --zk ...`: every topic registered in ZooKeeper with, per broker (master `<id>-m` or slave
 * `<id>-s<n>`), its partition count, whether it is registered for publishing (topics-pub) and subscribing
 * (topics-sub), and its sizes as that broker reports them (`stats topics`, `stats offsets`). A broker that does not
 * answer leaves its sizes empty and names the error.
 */
import { partitionKey } from './broker-directory.js';
import { withCluster, processIo, type CliIo, type ClusterContext, type ClusterFlags } from './cluster-context.js';
import { readBrokers, readTopicRegistrations, type BrokerInfo, type TopicRegistration } from './cluster-reader.js';
import { formatTable } from './table.js';

export interface TopicBrokerRow {
  readonly brokerId: number;
  /** `<id>-m` or `<id>-s<n>` */
  readonly role: string;
  readonly url: string | null;
  readonly numParts: number;
  readonly publish: boolean;
  readonly subscribe: boolean;
  readonly messages: number | null;
  readonly bytes: number | null;
  /** Per partition `[min, max)` byte range; null when the broker did not answer. */
  readonly partitions: readonly { readonly partition: number; readonly minOffset: number; readonly maxOffset: number }[] | null;
  readonly error: string | null;
}

export interface TopicsReport {
  readonly zkConnect: string;
  readonly zkRoot: string;
  readonly topics: readonly { readonly topic: string; readonly brokers: readonly TopicBrokerRow[] }[];
}

function nodeUrl(brokers: readonly BrokerInfo[], r: TopicRegistration): string | null {
  const b = brokers.find((x) => x.id === r.brokerId);
  if (b === undefined) return null;
  return r.slaveId === null ? b.master : b.slaves.find((s) => s.slaveId === r.slaveId)?.url ?? null;
}

async function brokerRow(ctx: ClusterContext, brokers: readonly BrokerInfo[], r: TopicRegistration): Promise<TopicBrokerRow> {
  const url = nodeUrl(brokers, r);
  const base = { brokerId: r.brokerId, role: r.role, url, numParts: r.numParts, publish: r.publish, subscribe: r.subscribe };
  if (url === null) {
    return { ...base, messages: null, bytes: null, partitions: null, error: `broker ${r.role} is not registered under brokers/ids` };
  }
  try {
    const [totals, ranges] = await Promise.all([ctx.brokers.topics(url), ctx.brokers.offsets(url)]);
    const partitions = [];
    for (let p = 0; p < r.numParts; p++) {
      const range = ranges.get(partitionKey(r.topic, p));
      partitions.push({ partition: p, minOffset: range?.min ?? 0, maxOffset: range?.max ?? 0 });
    }
    const t = totals.get(r.topic);
    return { ...base, messages: t?.messages ?? 0, bytes: t?.bytes ?? 0, partitions, error: null };
  } catch (e) {
    return { ...base, messages: null, bytes: null, partitions: null, error: (e as Error).message };
  }
}

export async function topicsReport(ctx: ClusterContext): Promise<TopicsReport> {
  const [brokers, registrations] = await Promise.all([readBrokers(ctx), readTopicRegistrations(ctx)]);
  const rows = await Promise.all(registrations.map((r) => brokerRow(ctx, brokers, r)));
  const topics: { topic: string; brokers: TopicBrokerRow[] }[] = [];
  registrations.forEach((r, i) => {
    const last = topics[topics.length - 1];
    if (last !== undefined && last.topic === r.topic) last.brokers.push(rows[i]!);
    else topics.push({ topic: r.topic, brokers: [rows[i]!] });
  });
  return { zkConnect: ctx.connect, zkRoot: ctx.paths.root, topics };
}

export function renderTopics(report: TopicsReport): string {
  if (report.topics.length === 0) return `no topics registered under ${report.zkRoot}/brokers (ZooKeeper ${report.zkConnect})\n`;
  const rows = report.topics.flatMap((t) => t.brokers.map((b) => [
    t.topic, b.role, b.url, b.numParts, b.publish, b.subscribe, b.messages, b.bytes, b.error,
  ]));
  return formatTable(['TOPIC', 'BROKER', 'URL', 'PARTITIONS', 'PUBLISH', 'SUBSCRIBE', 'MESSAGES', 'BYTES', 'ERROR'], rows, { dropIfEmpty: ['ERROR'] });
}

export async function clusterTopicsCommand(flags: ClusterFlags, io: CliIo = processIo): Promise<number> {
  const report = await withCluster(flags, topicsReport);
  io.out(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : renderTopics(report));
  return 0;
}
