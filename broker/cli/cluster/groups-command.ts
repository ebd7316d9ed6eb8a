/**
 * `metaq groups [group]`: the consumer groups in ZooKeeper; for one group, its members (`ids` nodes and their
 * topics) and, per topic and partition, the owner, the committed offset (`msgId-offset`), the partition's end on its
 * broker and the lag in bytes (offsets are byte positions). `metaq offsets show` prints the same partition rows.
 */
import { partitionKey } from './broker-directory.js';
import { withCluster, processIo, type CliIo, type ClusterContext, type ClusterFlags } from './cluster-context.js';
import {
  brokerUrl, groupPartitions, readBrokers, readGroupNames, readGroupTopics, readMembers, readPartitionStates,
  readTopicRegistrations, requireGroup, type BrokerInfo, type GroupMember, type PartitionName, type PartitionState,
  type TopicRegistration,
} from './cluster-reader.js';
import { formatTable } from './table.js';

/** A partition of a group: ZooKeeper's view plus the broker's. */
export interface PartitionRow extends PartitionState {
  readonly topic: string;
  readonly minOffset: number | null;
  /** The partition's end (where the next record goes); null when its broker did not answer. */
  readonly maxOffset: number | null;
  /** maxOffset - committed offset, in bytes; null when either is unknown. */
  readonly lag: number | null;
  /** Why the broker's view is missing. */
  readonly error: string | null;
}

export interface GroupReport {
  readonly group: string;
  readonly members: readonly GroupMember[];
  readonly topics: readonly { readonly topic: string; readonly lag: number | null; readonly partitions: readonly PartitionRow[] }[];
  /** Sum over the partitions with a known lag; null when none is known. */
  readonly lag: number | null;
}

export interface GroupSummary {
  readonly group: string;
  readonly members: number;
  readonly topics: readonly string[];
  readonly ownedPartitions: number;
  readonly lag: number | null;
}

/** Adds each partition's range and lag, asking each broker once (`stats offsets`). */
export async function partitionRows(ctx: ClusterContext, brokers: readonly BrokerInfo[], group: string, topic: string,
  partitions: readonly PartitionName[]): Promise<PartitionRow[]> {
  const states = await readPartitionStates(ctx, group, topic, partitions);
  return Promise.all(states.map(async (s): Promise<PartitionRow> => {
    const url = brokerUrl(brokers, s.brokerId);
    if (url === null) return { ...s, topic, minOffset: null, maxOffset: null, lag: null, error: `broker ${s.brokerId} is not registered` };
    try {
      // A partition the broker has never written is absent from its stats: it is empty.
      const range = (await ctx.brokers.offsets(url)).get(partitionKey(topic, s.partition)) ?? { min: 0, max: 0 };
      const lag = s.committedOffset === null ? null : Math.max(0, range.max - s.committedOffset);
      return { ...s, topic, minOffset: range.min, maxOffset: range.max, lag, error: null };
    } catch (e) {
      return { ...s, topic, minOffset: null, maxOffset: null, lag: null, error: (e as Error).message };
    }
  }));
}

function sumLag(rows: readonly { lag: number | null }[]): number | null {
  const known = rows.filter((r) => r.lag !== null);
  return known.length === 0 ? null : known.reduce((a, r) => a + r.lag!, 0);
}

/** One group in full. Throws CoordinationError for an unknown group. */
export async function groupReport(ctx: ClusterContext, group: string,
  cache?: { brokers: BrokerInfo[]; registrations: TopicRegistration[] }): Promise<GroupReport> {
  await requireGroup(ctx, group);
  const [brokers, registrations, members] = await Promise.all([
    cache?.brokers ?? readBrokers(ctx), cache?.registrations ?? readTopicRegistrations(ctx), readMembers(ctx, group),
  ]);
  const topics = await Promise.all((await readGroupTopics(ctx, group, members)).map(async (topic) => {
    const partitions = await partitionRows(ctx, brokers, group, topic, await groupPartitions(ctx, group, topic, registrations));
    return { topic, lag: sumLag(partitions), partitions };
  }));
  return { group, members, topics, lag: sumLag(topics) };
}

/** Every group, summarized. */
export async function groupsSummary(ctx: ClusterContext): Promise<GroupSummary[]> {
  const [brokers, registrations] = await Promise.all([readBrokers(ctx), readTopicRegistrations(ctx)]);
  const reports = await Promise.all((await readGroupNames(ctx)).map((g) => groupReport(ctx, g, { brokers, registrations })));
  return reports.map((r) => ({
    group: r.group,
    members: r.members.length,
    topics: r.topics.map((t) => t.topic),
    ownedPartitions: r.topics.reduce((n, t) => n + t.partitions.filter((p) => p.owner !== null).length, 0),
    lag: r.lag,
  }));
}

/** The partition table shared with `metaq offsets show`. */
export function renderPartitionRows(rows: readonly PartitionRow[]): string {
  return formatTable(['TOPIC', 'PARTITION', 'OWNER', 'COMMITTED', 'OFFSET', 'MAX_OFFSET', 'LAG', 'ERROR'],
    rows.map((r) => [r.topic, r.name, r.owner, r.committed, r.committedOffset, r.maxOffset, r.lag, r.error]), { dropIfEmpty: ['ERROR'] });
}

export function renderGroup(report: GroupReport): string {
  const members = report.members.length === 0
    ? 'no live members\n'
    : formatTable(['MEMBER', 'TOPICS'], report.members.map((m) => [m.id, m.topics.join(',')]));
  const rows = report.topics.flatMap((t) => t.partitions);
  const partitions = rows.length === 0 ? 'no partitions\n' : renderPartitionRows(rows);
  return `group ${report.group}: ${report.members.length} member(s), total lag ${report.lag ?? '-'} bytes\n\n` +
    `${members}\n${partitions}`;
}

export function renderGroups(groups: readonly GroupSummary[]): string {
  if (groups.length === 0) return 'no consumer groups\n';
  return formatTable(['GROUP', 'MEMBERS', 'TOPICS', 'OWNED_PARTITIONS', 'LAG'],
    groups.map((g) => [g.group, g.members, g.topics.join(','), g.ownedPartitions, g.lag]));
}

export async function groupsCommand(group: string | undefined, flags: ClusterFlags, io: CliIo = processIo): Promise<number> {
  const json = flags.json === true;
  const text = await withCluster(flags, async (ctx) => {
    if (group === undefined) {
      const groups = await groupsSummary(ctx);
      return json ? JSON.stringify({ groups }, null, 2) + '\n' : renderGroups(groups);
    }
    const report = await groupReport(ctx, group);
    return json ? JSON.stringify(report, null, 2) + '\n' : renderGroup(report);
  });
  io.out(text);
  return 0;
}
