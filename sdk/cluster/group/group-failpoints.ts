/**
 * Named failpoints of consumer-group coordination, for reliability tests (reference/reliability.md T8). Unset in
 * production: each costs one property read at the boundary it guards. Process-wide, so a test in one process can hold
 * one member of several; hooks get the member's consumerIdString to choose.
 *
 * @example
 * ```ts
 * groupFailpoints.afterReleaseBeforeClaim = async (member) => { if (member === victim) await held; };
 * // ...
 * delete groupFailpoints.afterReleaseBeforeClaim;
 * ```
 */
export interface GroupFailpoints {
  /** Runs in every rebalance attempt after the member released partitions and before it claims new ones. */
  afterReleaseBeforeClaim?: (member: string) => void | Promise<void>;
  /**
   * Runs before the ZooKeeper write of every commit of the ZooKeeper offset store, with the session that made the
   * fence (the current one when unfenced) and the offset being committed: holding it past a session expiry makes the
   * commit stale.
   */
  beforeCommit?: (sessionId: string, topic: string, partition: string, offset: number) => void | Promise<void>;
  /** True: cluster consumers made from now on commit offsets unfenced (MetaQ's way): the negative control. */
  unfencedCommits?: boolean;
}

/** The process's group failpoints (all unset). */
export const groupFailpoints: GroupFailpoints = {};
