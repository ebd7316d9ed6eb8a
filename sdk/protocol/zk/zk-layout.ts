/**
 * MetaQ 1.4's ZooKeeper layout: the paths under `zkRoot` and the data written at each, shared by brokers
 * (registration), clients (discovery, consumer groups) and the admin CLI, so that MetaQ's own tools read our
 * cluster and ours read theirs.
 *
 * ```
 * <root>/brokers/ids/<id>                       persistent, `meta://host:port` of the master (pre-1.4 readers)
 * <root>/brokers/ids/<id>/master                ephemeral,  `meta://host:port`
 * <root>/brokers/ids/<id>/slave<n>              ephemeral,  `meta://host:port`
 * <root>/brokers/ids/<id>/master_config_checksum ephemeral, decimal CRC32 of the master's server.ini
 * <root>/brokers/topics/<topic>/<id>-m          ephemeral,  `<numPartitions>` (pre-1.4.3 readers)
 * <root>/brokers/topics-pub/<topic>/<id>-m      ephemeral,  {"numParts":N,"broker":"<id>-m"} (accepts puts)
 * <root>/brokers/topics-sub/<topic>/<id>-m      ephemeral,  same JSON (serves gets)
 * <root>/consumers/<group>/ids/<consumerIdString>            ephemeral, subscribed topics joined by ','
 * <root>/consumers/<group>/owners/<topic>/<id>-<partition>   ephemeral, the owner's consumerIdString
 * <root>/consumers/<group>/offsets/<topic>/<id>-<partition>  persistent, "<msgId>-<offset>"
 * ```
 */

/** Which of the three topic registrations. */
export type TopicRegistryKind = 'topics' | 'topics-pub' | 'topics-sub';

/**
 * The paths of one cluster root.
 *
 * @example
 * ```ts
 * const paths = new ZkPaths('/meta');
 * paths.brokerMaster(0);                      // '/meta/brokers/ids/0/master'
 * paths.offset('billing', 'orders', '0-3');  // '/meta/consumers/billing/offsets/orders/0-3'
 * ```
 */
export class ZkPaths {
  /** The root with one leading `/` and no trailing one (`meta/` and `/meta` both give `/meta`). */
  readonly root: string;
  readonly brokerIds: string;

  constructor(root: string) {
    const trimmed = root.replace(/^\/+|\/+$/g, '');
    this.root = trimmed === '' ? '' : `/${trimmed}`;
    this.brokerIds = `${this.root}/brokers/ids`;
  }

  /** The persistent node of a broker id (holds the master URL for pre-1.4 clients). */
  brokerIdDir(brokerId: number): string {
    return `${this.brokerIds}/${brokerId}`;
  }

  brokerMaster(brokerId: number): string {
    return `${this.brokerIdDir(brokerId)}/master`;
  }

  brokerSlave(brokerId: number, slaveId: number): string {
    return `${this.brokerIdDir(brokerId)}/slave${slaveId}`;
  }

  brokerConfigChecksum(brokerId: number): string {
    return `${this.brokerIdDir(brokerId)}/master_config_checksum`;
  }

  /** `<root>/brokers/topics-pub` and its siblings. */
  topicRegistry(kind: TopicRegistryKind): string {
    return `${this.root}/brokers/${kind}`;
  }

  /** The directory of a topic's registrations, e.g. `<root>/brokers/topics-pub/orders`. */
  topicBrokers(kind: TopicRegistryKind, topic: string): string {
    return `${this.topicRegistry(kind)}/${topic}`;
  }

  /** One broker's registration of a topic: `.../<topic>/<id>-m` (master) or `.../<topic>/<id>-s<n>` (slave). */
  topicBroker(kind: TopicRegistryKind, topic: string, brokerId: number, slaveId?: number): string {
    return `${this.topicBrokers(kind, topic)}/${brokerRole(brokerId, slaveId)}`;
  }

  consumerGroups(): string {
    return `${this.root}/consumers`;
  }

  consumerGroup(group: string): string {
    return `${this.root}/consumers/${group}`;
  }

  consumerIds(group: string): string {
    return `${this.consumerGroup(group)}/ids`;
  }

  consumerId(group: string, consumerIdString: string): string {
    return `${this.consumerIds(group)}/${consumerIdString}`;
  }

  owners(group: string, topic: string): string {
    return `${this.consumerGroup(group)}/owners/${topic}`;
  }

  /** The ephemeral owner node of a partition (`partition` as `"<brokerId>-<n>"`). */
  owner(group: string, topic: string, partition: string): string {
    return `${this.owners(group, topic)}/${partition}`;
  }

  offsets(group: string, topic: string): string {
    return `${this.consumerGroup(group)}/offsets/${topic}`;
  }

  /** The persistent offset node of a partition (`partition` as `"<brokerId>-<n>"`). */
  offset(group: string, topic: string, partition: string): string {
    return `${this.offsets(group, topic)}/${partition}`;
  }
}

/**
 * Parses a partition's name in ZooKeeper and in the SDK, `"<brokerId>-<partition>"`; undefined when the text is not of
 * that form.
 *
 * @example
 * ```ts
 * parsePartitionName('0-3'); // { brokerId: 0, partition: 3 }
 * ```
 */
export function parsePartitionName(text: string): { brokerId: number; partition: number } | undefined {
  const m = /^(\d+)-(\d+)$/.exec(text);
  if (m === null) return undefined;
  return { brokerId: Number(m[1]), partition: Number(m[2]) };
}

/**
 * `<brokerId>-m` for a master, `<brokerId>-s<slaveId>` for a slave: the child names under a topic registration.
 *
 * @example
 * ```ts
 * brokerRole(3);    // '3-m'
 * brokerRole(3, 1); // '3-s1'
 * ```
 */
export function brokerRole(brokerId: number, slaveId?: number): string {
  return slaveId === undefined ? `${brokerId}-m` : `${brokerId}-s${slaveId}`;
}

/**
 * Parses a child name under a topic registration; undefined when it is not one.
 *
 * @example
 * ```ts
 * parseBrokerRole('3-s1'); // { brokerId: 3, slaveId: 1 }
 * parseBrokerRole('3-m');  // { brokerId: 3, slaveId: undefined }
 * ```
 */
export function parseBrokerRole(name: string): { brokerId: number; slaveId: number | undefined } | undefined {
  const m = /^(\d+)-(?:m|s(\d+))$/.exec(name);
  if (m === null) return undefined;
  return { brokerId: Number(m[1]), slaveId: m[2] === undefined ? undefined : Number(m[2]) };
}

/**
 * The slave id of a child name under `brokers/ids/<id>` (`slave<n>`); undefined for any other child.
 *
 * @example
 * ```ts
 * parseSlaveNode('slave2'); // 2
 * parseSlaveNode('master'); // undefined
 * ```
 */
export function parseSlaveNode(name: string): number | undefined {
  const m = /^slave(\d+)$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/**
 * The data of a `topics-pub` / `topics-sub` registration, as MetaQ 1.4.3+ writes it.
 *
 * @example
 * ```ts
 * encodeTopicRegistration(4, 0); // '{"numParts":4,"broker":"0-m"}'
 * ```
 */
export function encodeTopicRegistration(numParts: number, brokerId: number, slaveId?: number): string {
  return JSON.stringify({ numParts, broker: brokerRole(brokerId, slaveId) });
}

/**
 * Reads a topic registration: the JSON form, or the bare partition count of the deprecated `topics` nodes.
 * Throws an Error naming the text when it is neither.
 *
 * @example
 * ```ts
 * decodeTopicRegistration(Buffer.from('{"numParts":4,"broker":"0-m"}')); // { numParts: 4, broker: '0-m' }
 * ```
 */
export function decodeTopicRegistration(data: Buffer | string): { numParts: number; broker: string | undefined } {
  const text = data.toString().trim();
  if (/^\d+$/.test(text)) return { numParts: Number(text), broker: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const o = parsed as { numParts?: unknown; broker?: unknown } | undefined;
  if (o === undefined || o === null || typeof o !== 'object' || !Number.isInteger(o.numParts) || (o.numParts as number) < 0) {
    throw new Error(`malformed topic registration ${JSON.stringify(text)}: expected {"numParts":N,"broker":"<id>-m"}`);
  }
  return { numParts: o.numParts as number, broker: typeof o.broker === 'string' ? o.broker : undefined };
}

/**
 * A committed offset as MetaQ 1.4 stores it in ZooKeeper: `"<msgId>-<offset>"` (`-1-<offset>` when the id is unknown).
 *
 * @example
 * ```ts
 * encodeZkOffset(-1n, 4096);            // '-1-4096'
 * encodeZkOffset(7340032123456n, 4096); // '7340032123456-4096'
 * ```
 */
export function encodeZkOffset(msgId: bigint, offset: number): string {
  return `${msgId}-${offset}`;
}

/**
 * Reads a committed offset: `"<msgId>-<offset>"` split at the last `-`, or a bare `"<offset>"` (pre-1.4 clients).
 * Throws an Error naming the text when it is neither.
 *
 * @example
 * ```ts
 * decodeZkOffset('-1-4096'); // { msgId: -1n, offset: 4096 }
 * decodeZkOffset('4096');    // { msgId: -1n, offset: 4096 }
 * ```
 */
export function decodeZkOffset(data: Buffer | string): { msgId: bigint; offset: number } {
  const text = data.toString().trim();
  const m = /^(?:(-?\d+)-)?(\d+)$/.exec(text);
  const offset = m === null ? NaN : Number(m[2]);
  if (m === null || !Number.isSafeInteger(offset)) {
    throw new Error(`malformed committed offset ${JSON.stringify(text)}: expected "<msgId>-<offset>"`);
  }
  return { msgId: m[1] === undefined ? -1n : BigInt(m[1]), offset };
}

/**
 * MetaQ's consumerIdString: `<group>_<consumerId>`, the name of a consumer's `ids` node and the data of the owner
 * nodes it holds.
 *
 * @example
 * ```ts
 * consumerIdString('billing', '10.0.0.7-4242-9f1c...'); // 'billing_10.0.0.7-4242-9f1c...'
 * ```
 */
export function consumerIdString(group: string, consumerId: string): string {
  return `${group}_${consumerId}`;
}

/**
 * Sorts as Java's `String.compareTo` does for these ASCII names (UTF-16 code units): MetaQ sorts consumers and
 * partitions this way for its range assignment, so `"0-10"` comes before `"0-2"`. Returns a new array.
 *
 * @example
 * ```ts
 * sortAsStrings(['0-2', '0-10', '0-1']); // ['0-1', '0-10', '0-2']
 * ```
 */
export function sortAsStrings(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
