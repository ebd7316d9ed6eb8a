/**
 * `metaq offsets show|reset|skip --group G --topic T [--partition <brokerId>-<n> ...]`.
 *
 * - show: the rows of `metaq groups G` for one topic.
 * - reset `--to earliest|latest|<offset>`: writes `"-1-<offset>"` into each partition's offset node. earliest and
 *   latest are asked from the partition's broker; a numeric offset must lie in the partition's range and start a
 *   record. Every target is resolved before anything is written, so a failure writes nothing.
 * - skip: reset to latest.
 *
 * A reset is refused (exit 1, naming the owner) while a partition has a live owner znode, unless `--force`. The write
 * always moves the offset node's version (setData against the version read, or create): the owner's next fenced
 * commit (multi: check owner + set at its last known version) then fails, and it restarts that partition from the
 * stored offset. So a reset wins even when an owner appears between our check and our write.
 */
import { ConnectionError, CoordinationError, InvalidArgumentError } from '../../../sdk/errors.js';
import { MAX_OFFSET } from '../../../sdk/protocol/commands.js';
import { groupNameProblem, topicNameProblem } from '../../../sdk/protocol/names.js';
import { encodeZkOffset } from '../../../sdk/protocol/zk/zk-layout.js';
import { zkCodeOf } from '../../../sdk/protocol/zk/zk-session.js';
import { withCluster, processIo, type CliIo, type ClusterContext, type ClusterFlags } from './cluster-context.js';
import {
  brokerUrl, groupPartitions, parsePartitionName, readBrokers, readOwner, readTopicRegistrations, requireGroup,
  subscribablePartitions, type PartitionName,
} from './cluster-reader.js';
import { partitionRows, renderPartitionRows } from './groups-command.js';
import { formatTable } from './table.js';

export interface OffsetsFlags extends ClusterFlags {
  readonly group?: string;
  readonly topic?: string;
  readonly partition?: readonly string[];
  /** reset only: earliest | latest | <offset> */
  readonly to?: string;
  readonly force?: boolean;
}

export type ResetTarget = 'earliest' | 'latest' | number;

export interface ResetRow {
  readonly partition: string;
  readonly owner: string | null;
  /** The node's data before, or null when it did not exist. */
  readonly previous: string | null;
  readonly offset: number;
  /** What was written: `"-1-<offset>"`. */
  readonly written: string;
  /** The offset node's version after the write. */
  readonly version: number;
}

export interface ResetReport {
  readonly group: string;
  readonly topic: string;
  readonly to: ResetTarget;
  readonly partitions: readonly ResetRow[];
}

/** How many times a write is retried when a consumer commits between our read and our write. */
const WRITE_ATTEMPTS = 10;
/** The broker's default maxTransferSize: the largest record the boundary check reads whole. */
const MAX_TRANSFER = 1024 * 1024;

/** Parses `--to`. Throws InvalidArgumentError. */
export function parseResetTarget(to: string | undefined): ResetTarget {
  if (to === 'earliest' || to === 'latest') return to;
  if (to !== undefined && /^\d+$/.test(to) && Number.isSafeInteger(Number(to))) return Number(to);
  throw new InvalidArgumentError(`--to ${to ?? '(missing)'}: expected earliest, latest or a byte offset`);
}

function required(flags: OffsetsFlags): { group: string; topic: string; partitions: PartitionName[] | undefined } {
  const group = flags.group ?? '';
  const topic = flags.topic ?? '';
  const problem = (group === '' ? '--group is required' : groupNameProblem(group)) ??
    (topic === '' ? '--topic is required' : topicNameProblem(topic));
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  const given = flags.partition ?? [];
  return { group, topic, partitions: given.length === 0 ? undefined : given.map(parsePartitionName) };
}

function unknownTopic(ctx: ClusterContext, topic: string, detail: string): CoordinationError {
  return new CoordinationError('NO_NODE', `unknown topic ${topic}: no broker registers it under ` +
    `${ctx.paths.topicBrokers('topics-sub', topic)} (ZooKeeper ${ctx.connect})${detail}`);
}

export async function showOffsets(ctx: ClusterContext, flags: OffsetsFlags): Promise<ReturnType<typeof partitionRows>> {
  const { group, topic, partitions } = required(flags);
  await requireGroup(ctx, group);
  const [brokers, registrations] = await Promise.all([readBrokers(ctx), readTopicRegistrations(ctx, topic)]);
  const all = await groupPartitions(ctx, group, topic, registrations);
  if (all.length === 0) throw unknownTopic(ctx, topic, ` and group ${group} has no offsets for it`);
  return partitionRows(ctx, brokers, group, topic, partitions ?? all);
}

/** Resolves every target, checks ownership, then writes. See the file comment. */
export async function resetOffsets(ctx: ClusterContext, flags: OffsetsFlags, target: ResetTarget, io: CliIo): Promise<ResetReport> {
  const { group, topic, partitions: given } = required(flags);
  const [brokers, registrations] = await Promise.all([readBrokers(ctx), readTopicRegistrations(ctx, topic)]);
  const known = subscribablePartitions(registrations, topic);
  if (known.length === 0) throw unknownTopic(ctx, topic, '');
  const names = new Set(known.map((p) => p.name));
  const unknown = (given ?? []).filter((p) => !names.has(p.name));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`partition ${unknown.map((p) => p.name).join(', ')} of ${topic} is not registered ` +
      `(registered: ${known.map((p) => p.name).join(', ')})`);
  }
  const partitions = given ?? known;

  const owners = await Promise.all(partitions.map((p) => readOwner(ctx, group, topic, p.name)));
  const owned = partitions.map((p, i) => ({ p, owner: owners[i]! })).filter((x) => x.owner !== null);
  if (owned.length > 0 && flags.force !== true) {
    throw new CoordinationError('NODE_EXISTS', `refused: ${owned.map((x) => `${topic} ${x.p.name} is owned by ${x.owner}`).join('; ')}. ` +
      'Stop the consumers of the group, or use --force (the owner\'s next commit is then refused and it restarts from the new offset)');
  }

  const offsets = await Promise.all(partitions.map((p) => resolveTarget(ctx, brokerUrl(brokers, p.brokerId), topic, p, target)));
  for (const x of owned) {
    io.err(`metaq: warning: ${topic} ${x.p.name} is owned by ${x.owner}; its next commit will be refused and it restarts from the new offset\n`);
  }
  const rows: ResetRow[] = [];
  for (const [i, p] of partitions.entries()) {
    const written = encodeZkOffset(-1n, offsets[i]!);
    const { previous, version } = await writeOffset(ctx, ctx.paths.offset(group, topic, p.name), written);
    rows.push({ partition: p.name, owner: owners[i]!, previous, offset: offsets[i]!, written, version });
  }
  return { group, topic, to: target, partitions: rows };
}

async function resolveTarget(ctx: ClusterContext, url: string | null, topic: string, p: PartitionName, target: ResetTarget): Promise<number> {
  if (url === null) throw new CoordinationError('NO_NODE', `broker ${p.brokerId} (partition ${p.name}) is not registered under ${ctx.paths.brokerIds}`);
  const ask = async <T>(what: () => Promise<T>): Promise<T> => {
    try {
      return await what();
    } catch (e) {
      throw new ConnectionError(`cannot ask ${url} about ${topic} ${p.name}: ${(e as Error).message}`, { cause: e });
    }
  };
  if (target === 'earliest') return ask(() => ctx.brokers.nearestOffset(url, topic, p.partition, 0));
  if (target === 'latest') return ask(() => ctx.brokers.nearestOffset(url, topic, p.partition, MAX_OFFSET));
  const range = await ask(() => ctx.brokers.range(url, topic, p.partition));
  if (target < range.min || target > range.max) {
    throw new InvalidArgumentError(`offset ${target} is outside ${topic} ${p.name}: its range is [${range.min}, ${range.max}]`);
  }
  if (target < range.max) {
    const problem = await ask(() => ctx.brokers.recordProblemAt(url, topic, p.partition, target, range, MAX_TRANSFER));
    if (problem !== undefined) throw new InvalidArgumentError(`offset ${target} of ${topic} ${p.name} is not the start of a record: ${problem}`);
  }
  return target;
}

/** Writes `data`, moving the node's version; creates the node (and its parents) when missing. */
async function writeOffset(ctx: ClusterContext, path: string, data: string): Promise<{ previous: string | null; version: number }> {
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const node = await ctx.zk.getData(path);
    try {
      if (node === undefined) {
        await ctx.zk.ensurePath(path.slice(0, path.lastIndexOf('/')));
        await ctx.zk.create(path, data);
        return { previous: null, version: 0 };
      }
      const stat = await ctx.zk.setData(path, data, node.stat.version);
      return { previous: node.data.toString('utf8'), version: stat.version };
    } catch (e) {
      // A commit or a claim got there between our read and our write: read again.
      const code = zkCodeOf(e);
      if (code !== 'BAD_VERSION' && code !== 'NODE_EXISTS' && code !== 'NO_NODE') throw e;
    }
  }
  throw new CoordinationError('BAD_VERSION', `${path} kept changing during ${WRITE_ATTEMPTS} attempts to write it; try again`);
}

export function renderReset(report: ResetReport): string {
  return `reset group ${report.group} topic ${report.topic} to ${report.to}\n` +
    formatTable(['PARTITION', 'OWNER', 'PREVIOUS', 'OFFSET', 'WRITTEN'],
      report.partitions.map((r) => [r.partition, r.owner, r.previous, r.offset, r.written]));
}

export async function offsetsCommand(action: 'show' | 'reset' | 'skip', flags: OffsetsFlags, io: CliIo = processIo): Promise<number> {
  // Checked before connecting: a usage error must not wait for ZooKeeper.
  required(flags);
  const target = action === 'reset' ? parseResetTarget(flags.to) : 'latest';
  const json = flags.json === true;
  const text = await withCluster(flags, async (ctx) => {
    if (action === 'show') {
      const rows = await showOffsets(ctx, flags);
      return json ? JSON.stringify({ group: flags.group, topic: flags.topic, partitions: rows }, null, 2) + '\n' : renderPartitionRows(rows);
    }
    const report = await resetOffsets(ctx, flags, target, io);
    return json ? JSON.stringify(report, null, 2) + '\n' : renderReset(report);
  });
  io.out(text);
  return 0;
}
