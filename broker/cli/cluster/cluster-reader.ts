/**
 * Reads a cluster's state from ZooKeeper in MetaQ's layout (sdk/protocol/zk/zk-layout.ts): brokers, topic
 * registrations, consumer groups with their members, owners and committed offsets. Read-only, and tolerant of nodes
 * vanishing between a list and a read (ephemerals come and go while we look).
 */
import { CoordinationError, InvalidArgumentError } from '../../../sdk/errors.js';
import {
  decodeTopicRegistration, decodeZkOffset, parseBrokerRole, parsePartitionName as parseName, parseSlaveNode, type TopicRegistryKind,
  type ZkPaths,
} from '../../../sdk/protocol/zk/zk-layout.js';
import type { ZkSession } from '../../../sdk/protocol/zk/zk-session.js';

/** What the reader needs of a cluster context. */
export interface ZkView {
  readonly zk: ZkSession;
  readonly paths: ZkPaths;
  readonly connect: string;
}

export interface BrokerInfo {
  readonly id: number;
  /** `meta://host:port`, or null when no master is registered. */
  readonly master: string | null;
  readonly slaves: readonly { readonly slaveId: number; readonly url: string }[];
  /** The master's config checksum (decimal CRC32 of its server.ini), or null. */
  readonly configChecksum: string | null;
}

/** One broker's registration of a topic (master `<id>-m` or slave `<id>-s<n>`). */
export interface TopicRegistration {
  readonly topic: string;
  readonly role: string;
  readonly brokerId: number;
  readonly slaveId: number | null;
  readonly numParts: number;
  /** Registered under topics-pub (accepts puts). */
  readonly publish: boolean;
  /** Registered under topics-sub (serves gets). */
  readonly subscribe: boolean;
}

/** A partition as MetaQ names it in ZooKeeper: `"<brokerId>-<n>"`. */
export interface PartitionName {
  readonly brokerId: number;
  readonly partition: number;
  readonly name: string;
}

export interface GroupMember {
  /** The consumerIdString (`<group>_<consumerId>`), the name of its `ids` node. */
  readonly id: string;
  readonly topics: readonly string[];
}

export interface PartitionState extends PartitionName {
  /** The owner's consumerIdString, or null when no live consumer owns it. */
  readonly owner: string | null;
  /** The stored `"<msgId>-<offset>"`, or null when none was committed. */
  readonly committed: string | null;
  readonly committedOffset: number | null;
  readonly committedMsgId: string | null;
  /** The offset node's version (it moves on every commit and reset), or null. */
  readonly offsetVersion: number | null;
}

/** Largest broker id or partition number accepted on the command line (nine digits). */
const MAX_ID = 999_999_999;

/**
 * Parses `"<brokerId>-<n>"`. Throws InvalidArgumentError naming the text.
 *
 * @example
 * ```ts
 * parsePartitionName('0-3'); // { brokerId: 0, partition: 3, name: '0-3' }
 * ```
 */
export function parsePartitionName(text: string): PartitionName {
  const p = parseName(text.trim());
  if (p === undefined || p.brokerId > MAX_ID || p.partition > MAX_ID) throw new InvalidArgumentError(`bad partition ${JSON.stringify(text)}: expected <brokerId>-<partition>, e.g. 0-3`);
  return { ...p, name: `${p.brokerId}-${p.partition}` };
}

/** Numeric order (broker, then partition): for display. MetaQ's assignment order is sortAsStrings. */
export function comparePartitions(a: PartitionName, b: PartitionName): number {
  return a.brokerId - b.brokerId || a.partition - b.partition;
}

async function children(view: ZkView, path: string): Promise<string[]> {
  return (await view.zk.getChildren(path)) ?? [];
}

async function text(view: ZkView, path: string): Promise<string | null> {
  const node = await view.zk.getData(path);
  return node === undefined ? null : node.data.toString('utf8');
}

/** Every broker id under `brokers/ids` with its master, slaves and config checksum, by id. */
export async function readBrokers(view: ZkView): Promise<BrokerInfo[]> {
  const ids = (await children(view, view.paths.brokerIds)).filter((c) => /^\d+$/.test(c)).map(Number).sort((a, b) => a - b);
  return Promise.all(ids.map(async (id): Promise<BrokerInfo> => {
    const dir = view.paths.brokerIdDir(id);
    const names = await children(view, dir);
    const [master, configChecksum, slaveList] = await Promise.all([
      names.includes('master') ? text(view, view.paths.brokerMaster(id)) : null,
      names.includes('master_config_checksum') ? text(view, view.paths.brokerConfigChecksum(id)) : null,
      Promise.all(names.map(async (n) => {
        const slaveId = parseSlaveNode(n);
        const url = slaveId === undefined ? null : await text(view, `${dir}/${n}`);
        return slaveId === undefined || url === null ? undefined : { slaveId, url };
      })),
    ]);
    const slaves = slaveList.filter((s) => s !== undefined).sort((a, b) => a.slaveId - b.slaveId);
    return { id, master: master ?? null, slaves, configChecksum: configChecksum?.trim() ?? null };
  }));
}

/** The URL to ask about broker `id`'s partitions: its master, else its first slave (as MetaQ's consumers pick). */
export function brokerUrl(brokers: readonly BrokerInfo[], id: number): string | null {
  const b = brokers.find((x) => x.id === id);
  return b === undefined ? null : b.master ?? b.slaves[0]?.url ?? null;
}

/** The registrations of every topic (or of `only`), sorted by topic, then broker, masters first. */
export async function readTopicRegistrations(view: ZkView, only?: string): Promise<TopicRegistration[]> {
  const rows = new Map<string, { -readonly [K in keyof TopicRegistration]: TopicRegistration[K] }>();
  const kinds: TopicRegistryKind[] = ['topics-pub', 'topics-sub', 'topics'];
  await Promise.all(kinds.map(async (kind) => {
    const topics = only === undefined ? await children(view, view.paths.topicRegistry(kind)) : [only];
    await Promise.all(topics.map(async (topic) => {
      const roles = await children(view, view.paths.topicBrokers(kind, topic));
      await Promise.all(roles.map(async (role) => {
        const parsed = parseBrokerRole(role);
        const data = parsed === undefined ? null : await text(view, `${view.paths.topicBrokers(kind, topic)}/${role}`);
        if (parsed === undefined || data === null) return;
        let numParts: number;
        try {
          numParts = decodeTopicRegistration(data).numParts;
        } catch {
          return;  // A node we cannot read is not a registration we can act on.
        }
        const key = `${topic} ${role}`;
        const row = rows.get(key) ?? { topic, role, brokerId: parsed.brokerId, slaveId: parsed.slaveId ?? null, numParts, publish: false, subscribe: false };
        if (kind === 'topics-pub') row.publish = true;
        if (kind === 'topics-sub') row.subscribe = true;
        // The JSON registrations are authoritative; the deprecated node only fills in a missing count.
        if (kind !== 'topics') row.numParts = numParts;
        rows.set(key, row);
      }));
    }));
  }));
  return [...rows.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0) ||
    a.brokerId - b.brokerId || (a.slaveId ?? -1) - (b.slaveId ?? -1));
}

/** The partitions consumers can be given: `<id>-<n>` for each subscribe registration, masters and slaves merged. */
export function subscribablePartitions(registrations: readonly TopicRegistration[], topic: string): PartitionName[] {
  const seen = new Map<string, PartitionName>();
  for (const r of registrations) {
    if (r.topic !== topic || !r.subscribe) continue;
    for (let p = 0; p < r.numParts; p++) seen.set(`${r.brokerId}-${p}`, { brokerId: r.brokerId, partition: p, name: `${r.brokerId}-${p}` });
  }
  return [...seen.values()].sort(comparePartitions);
}

/** The consumer groups under `consumers/`, sorted. */
export async function readGroupNames(view: ZkView): Promise<string[]> {
  return (await children(view, view.paths.consumerGroups())).sort();
}

/** Throws CoordinationError (exit 1) naming the known groups when `group` has no node. */
export async function requireGroup(view: ZkView, group: string): Promise<void> {
  if (await view.zk.exists(view.paths.consumerGroup(group)) !== undefined) return;
  const known = await readGroupNames(view);
  throw new CoordinationError('NO_NODE', `unknown group ${group}: ZooKeeper ${view.connect} has no ${view.paths.consumerGroup(group)}` +
    ` (groups: ${known.length === 0 ? 'none' : known.join(', ')})`);
}

/** The live members of a group (its `ids` nodes), sorted. */
export async function readMembers(view: ZkView, group: string): Promise<GroupMember[]> {
  const ids = await children(view, view.paths.consumerIds(group));
  const members = await Promise.all(ids.map(async (id): Promise<GroupMember | undefined> => {
    const data = await text(view, view.paths.consumerId(group, id));
    return data === null ? undefined : { id, topics: data.split(',').map((t) => t.trim()).filter((t) => t !== '') };
  }));
  return members.filter((m): m is GroupMember => m !== undefined).sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** The topics a group is involved with: its members' subscriptions, and every topic it owns or has offsets for. */
export async function readGroupTopics(view: ZkView, group: string, members: readonly GroupMember[]): Promise<string[]> {
  const dir = view.paths.consumerGroup(group);
  const [owned, committed] = await Promise.all([children(view, `${dir}/owners`), children(view, `${dir}/offsets`)]);
  return [...new Set([...members.flatMap((m) => m.topics), ...owned, ...committed])].sort();
}

/**
 * The owner and committed offset of each partition of `topic` in `group`: the given partitions, or else every
 * subscribable one plus any the group owns or has an offset for.
 */
export async function readPartitionStates(view: ZkView, group: string, topic: string,
  partitions: readonly PartitionName[]): Promise<PartitionState[]> {
  const names = new Map<string, PartitionName>(partitions.map((p) => [p.name, p]));
  const states = await Promise.all([...names.values()].map(async (p): Promise<PartitionState> => {
    const [owner, offset] = await Promise.all([
      readOwner(view, group, topic, p.name),
      view.zk.getData(view.paths.offset(group, topic, p.name)),
    ]);
    const committed = offset === undefined ? null : offset.data.toString('utf8').trim();
    let parsed: { msgId: bigint; offset: number } | undefined;
    try {
      parsed = committed === null ? undefined : decodeZkOffset(committed);
    } catch {
      parsed = undefined;  // shown raw: the operator may want to reset exactly this partition
    }
    return {
      ...p,
      owner,
      committed,
      committedOffset: parsed?.offset ?? null,
      committedMsgId: parsed === undefined ? null : String(parsed.msgId),
      offsetVersion: offset?.stat.version ?? null,
    };
  }));
  return states.sort(comparePartitions);
}

/** The consumerIdString owning partition `name` (`<brokerId>-<n>`) of `topic` in `group`, or null. */
export function readOwner(view: ZkView, group: string, topic: string, name: string): Promise<string | null> {
  return text(view, view.paths.owner(group, topic, name));
}

/** Every partition of `topic` a group view shows: subscribable ones plus those with an owner or offset node. */
export async function groupPartitions(view: ZkView, group: string, topic: string,
  registrations: readonly TopicRegistration[]): Promise<PartitionName[]> {
  const [owned, committed] = await Promise.all([
    children(view, view.paths.owners(group, topic)),
    children(view, view.paths.offsets(group, topic)),
  ]);
  const all = new Map<string, PartitionName>(subscribablePartitions(registrations, topic).map((p) => [p.name, p]));
  for (const name of [...owned, ...committed]) {
    try {
      const p = parsePartitionName(name);
      all.set(p.name, p);
    } catch {
      // Not a partition node (MetaQ never writes one): leave it out of the view.
    }
  }
  return [...all.values()].sort(comparePartitions);
}
