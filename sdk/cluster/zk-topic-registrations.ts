import type { Logger } from 'pino';
import { decodeTopicRegistration, parseBrokerRole } from '../protocol/zk/zk-layout.js';
import type { ZkSession, ZkWatch } from '../protocol/zk/zk-session.js';
import { FirstRead } from './zk-first-read.js';

/** One broker's registration of a topic: `<id>-m` (slaveId undefined) or `<id>-s<n>`. */
export interface TopicRegistration {
  readonly brokerId: number;
  readonly slaveId: number | undefined;
  /** Undefined until read, or when the data is malformed (logged). */
  numParts: number | undefined;
}

/**
 * The registrations of one topic under `topics-pub` or `topics-sub` (`<dir>/<id>-m`, `<dir>/<id>-s<n>`): the
 * children of the topic's node and each child's `{"numParts":N,...}`, all watched, so the set follows brokers that
 * come and go and partition counts changed by a broker's config reload. `onChange` runs after every change.
 *
 * @example
 * ```ts
 * const regs = new ZkTopicRegistrations(zk, paths.topicBrokers('topics-pub', 'orders'), logger, recompute);
 * await regs.first.wait(10_000);
 * for (const r of regs.all()) console.log(r.brokerId, r.numParts);
 * ```
 */
export class ZkTopicRegistrations {
  /** Complete once the children and each child's data were read. */
  readonly first: FirstRead;
  private readonly regs = new Map<string, { reg: TopicRegistration; watch: ZkWatch }>();
  private readonly childrenWatch: ZkWatch;
  private closed = false;

  constructor(private readonly zk: ZkSession, readonly dir: string, private readonly logger: Logger,
    private readonly onChange: () => void) {
    this.first = new FirstRead(dir);
    this.first.expect('children');
    this.childrenWatch = zk.watchChildren(dir, (children) => this.onChildren(children ?? []));
  }

  /** Every registration seen, read or not. */
  all(): IterableIterator<TopicRegistration> {
    const it = this.regs.values();
    return (function* () {
      for (const r of it) yield r.reg;
    })();
  }

  close(err: Error): void {
    this.closed = true;
    this.childrenWatch.cancel();
    for (const r of this.regs.values()) r.watch.cancel();
    this.regs.clear();
    this.first.abort(err);
  }

  private onChildren(children: string[]): void {
    if (this.closed) return;
    const names = new Set(children);
    let changed = false;
    for (const [name, r] of this.regs) {
      if (names.has(name)) continue;
      r.watch.cancel();
      this.regs.delete(name);
      this.first.done(name);
      changed = true;
    }
    for (const name of names) {
      if (this.regs.has(name)) continue;
      const role = parseBrokerRole(name);
      if (role === undefined) continue;  // not a broker registration (MetaQ ignores these too)
      const reg: TopicRegistration = { brokerId: role.brokerId, slaveId: role.slaveId, numParts: undefined };
      this.first.expect(name);
      const entry = { reg, watch: this.zk.watchData(`${this.dir}/${name}`, (node) => this.onData(name, entry, node?.data)) };
      this.regs.set(name, entry);
    }
    this.first.done('children');
    this.first.settleIfComplete();
    if (changed) this.onChange();
  }

  private onData(name: string, entry: { reg: TopicRegistration }, data: Buffer | undefined): void {
    if (this.closed || this.regs.get(name) !== entry) return;
    let numParts: number | undefined;
    if (data !== undefined) {
      try {
        numParts = decodeTopicRegistration(data).numParts;
      } catch (err) {
        this.logger.warn({ path: `${this.dir}/${name}`, err }, 'ignoring a malformed topic registration');
      }
    }
    this.first.done(name);
    this.first.settleIfComplete();
    if (numParts === entry.reg.numParts) return;
    entry.reg.numParts = numParts;
    this.onChange();
  }
}
