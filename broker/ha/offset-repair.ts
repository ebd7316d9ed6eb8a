/**
 * Consumer offsets repaired by message id after a failover (MetaQ's `recoverOffset`). Consumers committed
 * `"<msgId>-<offset>"` against the old master; the promoted slave may lack the old master's unreplicated tail, so an
 * offset can point past the local end or into other records. For every group and every offset node of this broker's
 * partitions, an offset whose local record ending there is not the committed message is moved to the end of the
 * local record with the largest id at most the committed one (ids increase along a log), and the node is rewritten
 * as `"<thatRecordsId>-<newOffset>"`. A bare offset of an old client (no id) is left alone unless it lies past the
 * local end, where it is clamped to the end. Writes are version-checked: a commit made meanwhile by a consumer wins.
 */
import type { Logger } from 'pino';
import { decodeZkOffset, encodeZkOffset, parsePartitionName } from '../../sdk/protocol/zk/zk-layout.js';
import type { ZkPaths } from '../../sdk/protocol/zk/zk-layout.js';
import type { ZkSession } from '../../sdk/protocol/zk/zk-session.js';
import { zkCodeOf } from '../../sdk/protocol/zk/zk-session.js';
import type { LargestIdAtMost, ScannableLog } from '../store/record-scan.js';
import { findLargestIdAtMost } from '../store/record-scan.js';

export interface OffsetRepairOptions {
  readonly session: ZkSession;
  readonly paths: ZkPaths;
  /** The local logs (a MessageStore). */
  readonly store: { get(topic: string, partition: number): ScannableLog | undefined };
  /** Only `offsets/<topic>/<brokerId>-<n>` nodes are looked at. */
  readonly brokerId: number;
  readonly logger: Logger;
  /** Partitions repaired at once. Default 4. */
  readonly parallelism?: number;
}

/** One rewritten offset node; `before` and `after` are the node's values. */
export interface OffsetRepair {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  readonly before: string;
  readonly after: string;
}

export interface OffsetRepairReport {
  /** Consumer groups listed under `consumers/`. */
  readonly groups: number;
  /** Offset nodes of this broker read. */
  readonly checked: number;
  /** Offset nodes rewritten. */
  readonly repaired: number;
  /** Nodes left as they are that might need a repair: no local partition, a malformed value, a commit that won twice. */
  readonly skipped: number;
  readonly repairs: readonly OffsetRepair[];
}

interface OffsetNode { readonly group: string; readonly topic: string; readonly partition: number; readonly path: string }

const DEFAULT_PARALLELISM = 4;

/** See the file comment. Rejects with a CoordinationError when ZooKeeper fails (nothing after it is repaired). */
export async function repairConsumerOffsets(o: OffsetRepairOptions): Promise<OffsetRepairReport> {
  const t0 = Date.now();
  const { groups, nodes } = await listOffsetNodes(o);
  const byPartition = new Map<string, OffsetNode[]>();
  for (const n of nodes) {
    const key = `${n.topic}\u0000${n.partition}`;
    const list = byPartition.get(key);
    if (list === undefined) byPartition.set(key, [n]); else list.push(n);
  }
  const repairs: OffsetRepair[] = [];
  let skipped = 0;
  const queue = [...byPartition.values()];
  const worker = async (): Promise<void> => {
    for (let list = queue.shift(); list !== undefined; list = queue.shift()) {
      const r = await repairPartition(o, list);
      repairs.push(...r.repairs);
      skipped += r.skipped;
    }
  };
  const width = Math.max(1, o.parallelism ?? DEFAULT_PARALLELISM);
  await Promise.all(Array.from({ length: Math.min(width, queue.length) }, worker));
  const report: OffsetRepairReport = { groups, checked: nodes.length, repaired: repairs.length, skipped, repairs };
  o.logger.info({ groups, checked: nodes.length, repaired: repairs.length, skipped, durationMs: Date.now() - t0 },
    'consumer offsets repaired by message id');
  return report;
}

async function listOffsetNodes(o: OffsetRepairOptions): Promise<{ groups: number; nodes: OffsetNode[] }> {
  const groups = (await o.session.getChildren(o.paths.consumerGroups())) ?? [];
  const nodes: OffsetNode[] = [];
  for (const group of groups) {
    const topics = (await o.session.getChildren(`${o.paths.consumerGroup(group)}/offsets`)) ?? [];
    const lists = await Promise.all(topics.map(async (topic) =>
      ({ topic, names: (await o.session.getChildren(o.paths.offsets(group, topic))) ?? [] })));
    for (const { topic, names } of lists) {
      for (const name of names) {
        const p = parsePartitionName(name);
        if (p === undefined || p.brokerId !== o.brokerId) continue;
        nodes.push({ group, topic, partition: p.partition, path: o.paths.offset(group, topic, name) });
      }
    }
  }
  return { groups: groups.length, nodes };
}

async function repairPartition(o: OffsetRepairOptions, nodes: readonly OffsetNode[]):
  Promise<{ repairs: OffsetRepair[]; skipped: number }> {
  const { topic, partition } = nodes[0]!;
  const log = o.store.get(topic, partition);
  if (log === undefined) {
    o.logger.warn({ topic, partition, nodes: nodes.length }, 'offsets of a partition this broker does not hold: left as they are');
    return { repairs: [], skipped: nodes.length };
  }
  // Groups often sit at the same message: one segment scan per distinct id.
  const found = new Map<bigint, Promise<LargestIdAtMost>>();
  const lookup = (id: bigint): Promise<LargestIdAtMost> => {
    let p = found.get(id);
    if (p === undefined) { p = findLargestIdAtMost(log, id); found.set(id, p); }
    return p;
  };
  const repairs: OffsetRepair[] = [];
  let skipped = 0;
  for (const node of nodes) {
    const r = await repairNode(o, node, log, lookup);
    if (r === 'skipped') skipped++;
    else if (r !== undefined) repairs.push(r);
  }
  return { repairs, skipped };
}

/** Rewrites one node if needed: the repair, undefined when it is right, 'skipped' when it was left unrepaired. */
async function repairNode(o: OffsetRepairOptions, node: OffsetNode, log: ScannableLog,
  lookup: (id: bigint) => Promise<LargestIdAtMost>): Promise<OffsetRepair | undefined | 'skipped'> {
  const where = { group: node.group, topic: node.topic, partition: node.partition };
  for (let attempt = 0; attempt < 2; attempt++) {
    const cur = await o.session.getData(node.path);
    if (cur === undefined) return undefined;
    const before = cur.data.toString('utf8').trim();
    let after: string | undefined;
    try {
      after = await repairedValue(before, log, lookup);
    } catch (err) {
      o.logger.warn({ ...where, value: before, err }, 'committed offset not repaired');
      return 'skipped';
    }
    if (after === undefined || after === before) return undefined;
    try {
      await o.session.setData(node.path, after, cur.stat.version);
    } catch (err) {
      const code = zkCodeOf(err);
      if (code === 'NO_NODE') return undefined;
      if (code === 'BAD_VERSION') continue;  // a consumer committed meanwhile: check its value instead
      throw err;
    }
    o.logger.info({ ...where, old: before, new: after }, 'consumer offset repaired');
    return { ...where, before, after };
  }
  o.logger.info(where, 'consumer offset changed twice during its repair: the consumer\'s commit is kept');
  return 'skipped';
}

/** The node's new value, or undefined when it stays. Throws on a malformed value. */
async function repairedValue(text: string, log: ScannableLog, lookup: (id: bigint) => Promise<LargestIdAtMost>):
  Promise<string | undefined> {
  const { msgId, offset } = decodeZkOffset(text);
  const end = log.readableEnd;
  if (msgId < 0n) {
    if (offset <= end) return undefined;
    return /^\d+$/.test(text) ? String(end) : encodeZkOffset(msgId, end);
  }
  const hit = await lookup(msgId);
  if (hit.id === msgId && hit.end === offset) return undefined;
  return encodeZkOffset(hit.id ?? -1n, hit.end);
}
