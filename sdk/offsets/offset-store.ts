import type { Partition } from '../message.js';

/**
 * The committed position of one group in one partition.
 *
 * @example
 * ```ts
 * // Rewind a stopped group: it resumes at offset 4096 of partition 0-1 on its next start.
 * await store.commit('billing', [{ topic: 'orders', partition: { brokerId: 0, partition: 1 }, offset: 4096, msgId: -1n }]);
 * const c = await store.load('billing', 'orders', { brokerId: 0, partition: 1 });   // c?.offset === 4096
 * ```
 */
export interface CommittedOffset {
  readonly topic: string;
  readonly partition: Partition;
  /** Where the group resumes: the offset just after the last message processed (with all before it). */
  readonly offset: number;
  /** Id of the last message processed, or -1n when unknown (MetaQ stores it beside the offset). */
  readonly msgId: bigint;
}

/**
 * Where a consumer group keeps its offsets. Implementations: {@link LocalFileOffsetStore} (standalone and broadcast
 * default), {@link MysqlOffsetStore}, ZooKeeper (cluster default). Implement it to keep offsets anywhere else.
 *
 * A commit may be called concurrently with loads for other partitions; a store must make each commit atomic
 * (a crash leaves either the old or the new offsets, never a mix or a torn file).
 *
 * @example
 * ```ts
 * class MemoryStore implements OffsetStore {
 *   private m = new Map<string, CommittedOffset>();
 *   async load(group: string, topic: string, p: Partition) { return this.m.get(`${group}/${topic}/${partitionName(p)}`); }
 *   async commit(group: string, offsets: readonly CommittedOffset[]) {
 *     for (const o of offsets) this.m.set(`${group}/${o.topic}/${partitionName(o.partition)}`, o);
 *   }
 *   async close() {}
 * }
 * ```
 */
export interface OffsetStore {
  /** The committed offset, or undefined when the group never committed for this partition. */
  load(group: string, topic: string, partition: Partition): Promise<CommittedOffset | undefined>;
  /** Stores these offsets (one per topic and partition) for the group, durably, before resolving. */
  commit(group: string, offsets: readonly CommittedOffset[]): Promise<void>;
  /** Releases files or connections. Later calls fail with ShuttingDownError. */
  close(): Promise<void>;
}
