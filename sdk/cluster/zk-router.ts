/**
 * The router of a client in cluster mode: where topics live and how to reach their brokers, read from MetaQ's
 * ZooKeeper layout (sdk/protocol/zk/zk-layout.ts) and kept current by watches.
 *
 * - Brokers: `brokers/ids/<id>/master` gives each broker id's master URL. A link is made on first use, replaced
 *   when the URL changes, and retired when the master goes away (no new requests; closed once its requests were
 *   answered, or after the request timeout: what is still pending then fails with a retriable error). Reads of a
 *   broker whose master is gone go to its async slave (`brokers/ids/<id>/slave<n>`, same logs and offsets) until
 *   the master is back.
 * - Publish: the `-m` children of `brokers/topics-pub/<topic>` whose master is registered, partitions
 *   `(brokerId, 0..numParts-1)` sorted numerically (MetaQ's ProducerZooKeeper).
 * - Subscribe: masters and slaves of `brokers/topics-sub/<topic>` (same broker id, so the union), sorted the same way.
 *
 * Answers are arrays computed when a watch fires, so asking is cheap; {@link ZkRouter.topologyVersion} moves on
 * every change, which is how producers notice without asking on every send.
 */
import type { Logger } from 'pino';
import { ConnectionError, InvalidArgumentError, ShuttingDownError, UnknownTopicError } from '../errors.js';
import type { Partition } from '../message.js';
import { BrokerLink, type BrokerLinkOptions } from '../network/broker-link.js';
import { parseBrokerUrl } from '../protocol/broker-url.js';
import { topicPatternProblem } from '../protocol/names.js';
import type { ZkPaths } from '../protocol/zk/zk-layout.js';
import type { ZkSession } from '../protocol/zk/zk-session.js';
import type { BrokerRouter, Link } from './broker-router.js';
import { ZkBrokerRegistry } from './zk-broker-registry.js';
import { ZkTopicRegistrations } from './zk-topic-registrations.js';

/** How often a retired link is checked for answered requests before it is closed. */
const RETIRE_POLL_MS = 50;

export interface ZkRouterOptions {
  readonly zk: ZkSession;
  readonly paths: ZkPaths;
  /** Options of every broker link (timeouts, heartbeat, reconnect, logger). */
  readonly linkOptions: BrokerLinkOptions;
  readonly logger: Logger;
  /** How long a first question about a topic (or the start) waits for ZooKeeper's answer. */
  readonly readTimeoutMs: number;
}

/** The registries that hold partitions (the deprecated `topics` one is for old readers only). */
type PartitionKind = 'topics-pub' | 'topics-sub';

interface TopicView {
  readonly topic: string;
  readonly kind: PartitionKind;
  readonly regs: ZkTopicRegistrations;
  partitions: readonly Partition[];
}

/**
 * A {@link BrokerRouter} over ZooKeeper (see the module comment). Made by `createClient({ zkConnect })`; it owns
 * the ZkSession and closes it.
 *
 * @example
 * ```ts
 * const zk = await ZkSession.open({ connect: '127.0.0.1:2181', sessionTimeoutMs: 30_000, connectTimeoutMs: 30_000, logger });
 * const router = await ZkRouter.start({ zk, paths: new ZkPaths('/meta'), linkOptions: { logger }, logger, readTimeoutMs: 10_000 });
 * await router.partitionsForPublish('orders'); // [{ brokerId: 0, partition: 0 }, ..., { brokerId: 1, partition: 3 }]
 * await router.close();
 * ```
 */
export class ZkRouter implements BrokerRouter {
  private readonly registry: ZkBrokerRegistry;
  private readonly views = { 'topics-pub': new Map<string, TopicView>(), 'topics-sub': new Map<string, TopicView>() };
  private readonly live = new Map<number, BrokerLink>();
  /** Links to async slaves, for reads of brokers whose master is gone. */
  private readonly slaveLive = new Map<number, BrokerLink>();
  private readonly retiring = new Set<BrokerLink>();
  private version = 0;
  private closing: Promise<void> | undefined;

  private constructor(private readonly o: ZkRouterOptions) {
    this.registry = new ZkBrokerRegistry(o.zk, o.paths, o.logger, () => this.onBrokersChanged());
  }

  /** Reads the registered brokers; rejects (and closes nothing: the caller owns the session) when ZooKeeper does not answer. */
  static async start(options: ZkRouterOptions): Promise<ZkRouter> {
    const router = new ZkRouter(options);
    try {
      await router.registry.start(options.readTimeoutMs);
    } catch (e) {
      router.registry.close(e as Error);
      throw e;
    }
    return router;
  }

  /** Moves on whenever a partition list or a broker's master changed; a producer asks again when it moved. */
  get topologyVersion(): number {
    return this.version;
  }

  partitionsForPublish(topic: string): Promise<readonly Partition[]> {
    return this.partitions('topics-pub', topic);
  }

  partitionsForSubscribe(topic: string): Promise<readonly Partition[]> {
    return this.partitions('topics-sub', topic);
  }

  link(brokerId: number, forRead = false): Link {
    const link = this.live.get(brokerId);
    if (link !== undefined) return link;
    if (this.closing !== undefined) throw new ShuttingDownError('the cluster router');
    const url = this.registry.masterUrl(brokerId);
    if (url === undefined && forRead) {
      const slave = this.slaveLink(brokerId);
      if (slave !== undefined) return slave;
    }
    if (url === undefined) {
      throw new ConnectionError(`broker ${brokerId} has no master registered in ZooKeeper (${this.o.paths.brokerMaster(brokerId)})`);
    }
    const made = new BrokerLink(parseBrokerUrl(url), this.o.linkOptions);
    this.live.set(brokerId, made);
    return made;
  }

  /** A link to an async slave of `brokerId` (made now where missing); undefined when none is registered. */
  private slaveLink(brokerId: number): BrokerLink | undefined {
    const existing = this.slaveLive.get(brokerId);
    if (existing !== undefined) return existing;
    const url = this.registry.slaveUrl(brokerId);
    if (url === undefined) return undefined;
    this.o.logger.info({ brokerId, slave: url }, 'master gone: reading from its async slave');
    const made = new BrokerLink(parseBrokerUrl(url), this.o.linkOptions);
    this.slaveLive.set(brokerId, made);
    return made;
  }

  /** A link to every broker with a registered master (made now where missing). */
  links(): ReadonlyMap<number, Link> {
    const out = new Map<number, Link>();
    if (this.closing !== undefined) return out;
    for (const id of this.registry.masters().keys()) out.set(id, this.link(id));
    return out;
  }

  /** Cancels the watches, closes every link and the ZooKeeper session. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const err = new ShuttingDownError('the cluster router');
      this.registry.close(err);
      for (const byTopic of Object.values(this.views)) {
        for (const v of byTopic.values()) v.regs.close(err);
        byTopic.clear();
      }
      const links = [...this.live.values(), ...this.slaveLive.values(), ...this.retiring];
      this.live.clear();
      this.slaveLive.clear();
      this.retiring.clear();
      await Promise.all(links.map((l) => l.close()));
      await this.o.zk.close();
    })();
    return this.closing;
  }

  private partitions(kind: PartitionKind, topic: string): Promise<readonly Partition[]> {
    if (this.closing !== undefined) return Promise.reject(new ShuttingDownError('the cluster router'));
    let view = this.views[kind].get(topic);
    if (view === undefined) {
      // A wildcard section's pattern is registered too (the `*` default topic).
      const problem = topicPatternProblem(topic);
      if (problem !== undefined) return Promise.reject(new InvalidArgumentError(problem));
      view = this.watchTopic(kind, topic);
    }
    const v = view;
    if (v.regs.first.isComplete) return answer(v);
    return v.regs.first.wait(this.o.readTimeoutMs).then(() => answer(v));
  }

  private watchTopic(kind: PartitionKind, topic: string): TopicView {
    const view: TopicView = {
      topic,
      kind,
      partitions: [],
      regs: new ZkTopicRegistrations(this.o.zk, this.o.paths.topicBrokers(kind, topic), this.o.logger,
        () => this.recompute(view)),
    };
    this.views[kind].set(topic, view);
    return view;
  }

  /** Rebuilds a view's partition list; a different list bumps the version. */
  private recompute(view: TopicView): void {
    const next = partitionsOf(view, (id) => this.registry.masterUrl(id) !== undefined);
    if (samePartitions(next, view.partitions)) return;
    this.o.logger.info({ topic: view.topic, kind: view.kind, partitions: next.length }, 'topic partitions changed in ZooKeeper');
    view.partitions = next;
    this.version++;
  }

  private onBrokersChanged(): void {
    this.version++;
    for (const [id, link] of this.live) {
      const url = this.registry.masterUrl(id);
      if (url !== undefined && url === link.url) continue;
      this.live.delete(id);
      this.retire(link);
    }
    // A slave link serves only while its broker has no master and the slave is still registered.
    for (const [id, link] of this.slaveLive) {
      if (this.registry.masterUrl(id) === undefined && this.registry.slaveUrl(id) === link.url) continue;
      this.slaveLive.delete(id);
      this.retire(link);
    }
    // Publish lists include only brokers with a registered master.
    for (const v of this.views['topics-pub'].values()) this.recompute(v);
  }

  /** Takes a link out of use; closes it once its requests were answered, or after the request timeout. */
  private retire(link: BrokerLink): void {
    this.retiring.add(link);
    const deadline = Date.now() + (this.o.linkOptions.requestTimeoutMs ?? 10_000);
    const check = (): void => {
      if (!this.retiring.has(link)) return;
      if (link.inFlight > 0 && Date.now() < deadline) {
        setTimeout(check, RETIRE_POLL_MS).unref();
        return;
      }
      this.retiring.delete(link);
      link.close().catch((err: unknown) => this.o.logger.warn({ err, broker: link.url }, 'closing a retired broker link failed'));
    };
    check();
  }
}

function answer(view: TopicView): Promise<readonly Partition[]> {
  return view.partitions.length === 0 ? Promise.reject(new UnknownTopicError(view.topic)) : Promise.resolve(view.partitions);
}

/** The partitions of a view's registrations: masters only for publish (and only with a live master), else all. */
function partitionsOf(view: TopicView, hasMaster: (brokerId: number) => boolean): readonly Partition[] {
  const counts = new Map<number, number>();
  for (const r of view.regs.all()) {
    if (r.numParts === undefined) continue;
    if (view.kind === 'topics-pub' && (r.slaveId !== undefined || !hasMaster(r.brokerId))) continue;
    counts.set(r.brokerId, Math.max(counts.get(r.brokerId) ?? 0, r.numParts));
  }
  const out: Partition[] = [];
  for (const id of [...counts.keys()].sort((a, b) => a - b)) {
    for (let partition = 0; partition < counts.get(id)!; partition++) out.push({ brokerId: id, partition });
  }
  return out;
}

function samePartitions(a: readonly Partition[], b: readonly Partition[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.brokerId !== b[i]!.brokerId || a[i]!.partition !== b[i]!.partition) return false;
  }
  return true;
}
