/**
 * The cluster's offset store: MetaQ's ZkOffsetStorage layout (`<root>/consumers/<group>/offsets/<topic>/<id>-<p>`,
 * persistent, `"<msgId>-<offset>"`), with commits fenced so that only the partition's current owner can commit.
 *
 * Fencing (what MetaQ lacks): loading a partition this consumer owns re-writes the offset node with its own data at
 * the version just read (creating the node, empty, when missing), so the node's version moves past anything an
 * earlier owner saw. Every commit is one ZooKeeper multi: `check(owner node, our owner version)` + `set(offset node,
 * data, the version we last wrote)`. An earlier owner (session expired, or the partition moved in a rebalance) then
 * fails with NO_NODE or BAD_VERSION, and so does a live owner after an admin reset moved the version: both surface
 * as FencedError, and the fence listener hears of it (the group member restarts or drops the partition).
 *
 * An empty offset node means "claimed, nothing committed yet": `load` returns undefined for it, as for a missing one.
 */
import type { Partition } from '../message.js';
import { partitionName } from '../message.js';
import { CoordinationError, FencedError, ShuttingDownError } from '../errors.js';
import { decodeZkOffset, encodeZkOffset, type ZkPaths } from '../protocol/zk/zk-layout.js';
import { zkCodeOf, type ZkSession } from '../protocol/zk/zk-session.js';
import { groupFailpoints } from '../cluster/group/group-failpoints.js';
import type { CommittedOffset, OffsetStore } from './offset-store.js';

/** What this store knows of a partition it owns. */
interface Fence {
  readonly ownerPath: string;
  readonly ownerVersion: number;
  /** The session that held the owner node when the fence was made. */
  readonly sessionId: string;
  /** The offset node's version as we last wrote it. */
  offsetVersion: number;
}

/**
 * Told when a commit was refused: `stillOwner` when this session still holds the owner node under the fence the
 * commit was made with (an admin reset moved the offset). `stale` when that fence is no longer the partition's
 * current one (the ownership it was made under ended: a session lost, a rebalance): the current ownership, if any,
 * is not concerned.
 */
export type FenceListener = (group: string, topic: string, partition: Partition, stillOwner: boolean, stale: boolean) => void;

export interface ZkOffsetStoreOptions {
  /**
   * Test-only: commit without the owner check and the version (MetaQ's unfenced behaviour), for the negative control
   * of the expiry test. Never set it in production.
   */
  readonly unfenced?: boolean;
}

/**
 * Offsets in ZooKeeper, fenced by partition ownership.
 *
 * @example
 * ```ts
 * const store = new ZkOffsetStore(zk, new ZkPaths('/meta'));
 * // after creating the owner node <root>/consumers/billing/owners/orders/0-1:
 * const c = await store.load('billing', 'orders', { brokerId: 0, partition: 1 });
 * await store.commit('billing', [{ topic: 'orders', partition: { brokerId: 0, partition: 1 }, offset: 4096, msgId: -1n }]);
 * ```
 */
export class ZkOffsetStore implements OffsetStore {
  private readonly fences = new Map<string, Fence>();
  private listener: FenceListener | undefined;
  private closed = false;

  constructor(private readonly zk: ZkSession, private readonly paths: ZkPaths,
    private readonly options: ZkOffsetStoreOptions = {}) {}

  /** Sets the one listener told of refused commits. */
  onFenced(listener: FenceListener | undefined): void {
    this.listener = listener;
  }

  /**
   * The committed offset. When this session owns the partition's owner node, the offset node is fenced first (see
   * the file comment); otherwise it is only read, and a later commit of the partition is refused.
   */
  async load(group: string, topic: string, partition: Partition): Promise<CommittedOffset | undefined> {
    this.checkOpen();
    const name = partitionName(partition);
    const key = fenceKey(group, topic, name);
    this.fences.delete(key);
    const offsetPath = this.paths.offset(group, topic, name);
    const ownerPath = this.paths.owner(group, topic, name);
    const owner = await this.zk.getData(ownerPath);
    if (owner === undefined || !this.zk.ownsEphemeral(owner.stat)) {
      const node = await this.zk.getData(offsetPath);
      return node === undefined ? undefined : decode(topic, partition, node.data);
    }
    for (let attempt = 0; ; attempt++) {
      const node = await this.zk.getData(offsetPath);
      try {
        let version: number;
        if (node === undefined) {
          await this.zk.ensurePath(this.paths.offsets(group, topic));
          await this.zk.create(offsetPath, '', 'persistent');
          version = 0;
        } else {
          version = (await this.zk.setData(offsetPath, node.data, node.stat.version)).version;
        }
        this.fences.set(key, { ownerPath, ownerVersion: owner.stat.version, sessionId: this.zk.sessionId, offsetVersion: version });
        return node === undefined ? undefined : decode(topic, partition, node.data);
      } catch (err) {
        const code = zkCodeOf(err);
        // Someone wrote (or created) it between our read and write: read again.
        if ((code !== 'BAD_VERSION' && code !== 'NODE_EXISTS' && code !== 'NO_NODE') || attempt >= 10) throw err;
      }
    }
  }

  /**
   * Commits each offset with one fenced multi. Offsets of other partitions are still written when one is refused;
   * then rejects with the first FencedError (or the first other failure).
   */
  async commit(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    this.checkOpen();
    const results = await Promise.allSettled(offsets.map((o) => this.commitOne(group, o)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failed.length > 0) throw failed.find((e) => e instanceof FencedError) ?? failed[0];
  }

  /** Drops what this store knows of a partition (it was released). */
  forget(group: string, topic: string, partition: Partition): void {
    this.fences.delete(fenceKey(group, topic, partitionName(partition)));
  }

  /** Forgets every fence (the session that made them is gone). */
  forgetAll(): void {
    this.fences.clear();
  }

  /** The ZooKeeper session belongs to the client, which closes it; this only refuses later calls. */
  close(): Promise<void> {
    this.closed = true;
    this.fences.clear();
    return Promise.resolve();
  }

  private async commitOne(group: string, o: CommittedOffset): Promise<void> {
    const name = partitionName(o.partition);
    const offsetPath = this.paths.offset(group, o.topic, name);
    const data = encodeZkOffset(o.msgId, o.offset);
    if (this.options.unfenced === true) {
      await groupFailpoints.beforeCommit?.(this.zk.sessionId, o.topic, name, o.offset);
      await this.zk.ensurePath(this.paths.offsets(group, o.topic));
      await this.zk.setData(offsetPath, data).catch(async (err: unknown) => {
        if (zkCodeOf(err) !== 'NO_NODE') throw err;
        await this.zk.create(offsetPath, data, 'persistent');
      });
      return;
    }
    const key = fenceKey(group, o.topic, name);
    const fence = this.fences.get(key);
    if (fence === undefined || fence.sessionId !== this.zk.sessionId) {
      this.fences.delete(key);
      // No fence of this session: the commit comes from an ownership that ended (or one not loaded yet).
      throw this.refused(group, o, false, true, 'this consumer does not own the partition');
    }
    await groupFailpoints.beforeCommit?.(fence.sessionId, o.topic, name, o.offset);
    try {
      await this.zk.multi([
        { op: 'check', path: fence.ownerPath, version: fence.ownerVersion },
        { op: 'set', path: offsetPath, data, version: fence.offsetVersion },
      ]);
      fence.offsetVersion++;
    } catch (err) {
      const code = zkCodeOf(err);
      if (code !== 'NO_NODE' && code !== 'BAD_VERSION') throw err;
      // The partition may have been lost and loaded again meanwhile (a new session, the same member): that newer
      // fence is the current ownership's, and this refusal says nothing about it.
      const stale = this.fences.get(key) !== fence;
      if (!stale) this.fences.delete(key);
      const owner = stale ? undefined : await this.zk.getData(fence.ownerPath).catch(() => undefined);
      const stillOwner = owner !== undefined && this.zk.ownsEphemeral(owner.stat) && fence.sessionId === this.zk.sessionId;
      throw this.refused(group, o, stillOwner, stale, stillOwner
        ? `the offset node changed under its owner (an admin reset?): ${code}`
        : `the partition has another owner or none: ${code}`);
    }
  }

  private refused(group: string, o: CommittedOffset, stillOwner: boolean, stale: boolean, detail: string): FencedError {
    const e = new FencedError(group, o.topic, partitionName(o.partition), detail);
    try {
      this.listener?.(group, o.topic, o.partition, stillOwner, stale);
    } catch {
      // The listener logs its own failures; the commit's answer stays the FencedError.
    }
    return e;
  }

  private checkOpen(): void {
    if (this.closed) throw new ShuttingDownError('the ZooKeeper offset store');
  }
}

function fenceKey(group: string, topic: string, partition: string): string {
  return `${group}\n${topic}\n${partition}`;
}

function decode(topic: string, partition: Partition, data: Buffer): CommittedOffset | undefined {
  if (data.length === 0) return undefined;
  try {
    const { msgId, offset } = decodeZkOffset(data);
    return { topic, partition, offset, msgId };
  } catch (err) {
    throw new CoordinationError('BAD_DATA', `offset node of ${topic} ${partitionName(partition)}: ${(err as Error).message}`);
  }
}
