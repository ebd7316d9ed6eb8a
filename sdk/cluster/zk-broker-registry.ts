import type { Logger } from 'pino';
import { parseSlaveNode, type ZkPaths } from '../protocol/zk/zk-layout.js';
import type { ZkSession, ZkWatch } from '../protocol/zk/zk-session.js';
import { FirstRead } from './zk-first-read.js';

interface BrokerEntry {
  master: string | undefined;
  /** Async slaves' URLs, by slave number. */
  slaves: string[];
  readonly watch: ZkWatch;
  readonly slavesWatch: ZkWatch;
}

/**
 * The master URL of every broker id, as the brokers registered them: the children of `<root>/brokers/ids` and
 * the data of each `<id>/master`, both watched. `onChange` runs after every change of a master URL (a broker
 * came, went, or moved) or of the async slaves (`<id>/slave<n>`), which consumers read from while a master is gone.
 *
 * @example
 * ```ts
 * const registry = new ZkBrokerRegistry(zk, paths, logger, () => relink());
 * await registry.start(10_000);
 * registry.masterUrl(0); // 'meta://10.0.0.7:8123'
 * ```
 */
export class ZkBrokerRegistry {
  private readonly brokers = new Map<number, BrokerEntry>();
  private readonly first: FirstRead;
  private idsWatch: ZkWatch | undefined;
  private closed = false;

  constructor(private readonly zk: ZkSession, private readonly paths: ZkPaths, private readonly logger: Logger,
    private readonly onChange: () => void) {
    this.first = new FirstRead(paths.brokerIds);
  }

  /** Starts watching; resolves once every registered master was read (rejects after `timeoutMs`). */
  start(timeoutMs: number): Promise<void> {
    this.first.expect('ids');
    this.idsWatch = this.zk.watchChildren(this.paths.brokerIds, (children) => this.onIds(children ?? []));
    return this.first.wait(timeoutMs);
  }

  /** The registered master of `brokerId`; undefined when none is. */
  masterUrl(brokerId: number): string | undefined {
    return this.brokers.get(brokerId)?.master;
  }

  /** The URL of an async slave of `brokerId` (the lowest slave number), undefined when none is registered. */
  slaveUrl(brokerId: number): string | undefined {
    return this.brokers.get(brokerId)?.slaves[0];
  }

  /** Every broker id with a registered master, and its URL. */
  masters(): Map<number, string> {
    const out = new Map<number, string>();
    for (const [id, b] of this.brokers) if (b.master !== undefined) out.set(id, b.master);
    return out;
  }

  close(err: Error): void {
    this.closed = true;
    this.idsWatch?.cancel();
    for (const b of this.brokers.values()) { b.watch.cancel(); b.slavesWatch.cancel(); }
    this.brokers.clear();
    this.first.abort(err);
  }

  private onIds(children: string[]): void {
    if (this.closed) return;
    const ids = new Set<number>();
    for (const c of children) {
      if (/^\d+$/.test(c)) ids.add(Number(c));
    }
    let changed = false;
    for (const [id, b] of this.brokers) {
      if (ids.has(id)) continue;
      b.watch.cancel();
      b.slavesWatch.cancel();
      this.brokers.delete(id);
      this.first.done(`master ${id}`);
      changed ||= b.master !== undefined;
    }
    for (const id of ids) {
      if (this.brokers.has(id)) continue;
      this.first.expect(`master ${id}`);
      const entry: BrokerEntry = {
        master: undefined,
        slaves: [],
        watch: this.zk.watchData(this.paths.brokerMaster(id), (node) => this.onMaster(id, entry, node?.data.toString('utf8'))),
        slavesWatch: this.zk.watchChildren(this.paths.brokerIdDir(id), (children) => { void this.onSlaves(id, entry, children ?? []); }),
      };
      this.brokers.set(id, entry);
    }
    this.first.done('ids');
    this.first.settleIfComplete();
    if (changed) this.onChange();
  }

  private async onSlaves(id: number, entry: BrokerEntry, children: string[]): Promise<void> {
    const ids = children.map(parseSlaveNode).filter((n) => n !== undefined).sort((a, b) => a - b);
    const nodes = await Promise.all(ids.map((n) => this.zk.getData(this.paths.brokerSlave(id, n)).catch(() => undefined)));
    if (this.closed || this.brokers.get(id) !== entry) return;
    const slaves = nodes.map((n) => n?.data.toString('utf8').trim() ?? '').filter((u) => u !== '');
    if (slaves.join(' ') === entry.slaves.join(' ')) return;
    this.logger.info({ brokerId: id, slaves }, 'broker slaves changed in ZooKeeper');
    entry.slaves = slaves;
    this.onChange();
  }

  private onMaster(id: number, entry: BrokerEntry, url: string | undefined): void {
    if (this.closed || this.brokers.get(id) !== entry) return;
    const master = url === undefined || url.trim() === '' ? undefined : url.trim();
    this.first.done(`master ${id}`);
    this.first.settleIfComplete();
    if (master === entry.master) return;
    this.logger.info({ brokerId: id, from: entry.master, to: master }, 'broker master changed in ZooKeeper');
    entry.master = master;
    this.onChange();
  }
}
