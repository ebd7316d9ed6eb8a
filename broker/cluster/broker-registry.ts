/**
 * The broker's registration in ZooKeeper, as MetaQ 1.4's BrokerZooKeeper does it (layout in
 * sdk/protocol/zk/zk-layout.ts), so that MetaQ clients and ours find this broker:
 *
 * - `brokers/ids/<id>/master` (ephemeral, `meta://host:port`), the persistent `brokers/ids/<id>` holding the same
 *   URL for pre-1.4 clients, and `brokers/ids/<id>/master_config_checksum` (decimal CRC32 of server.ini). A slave
 *   registers `brokers/ids/<id>/slave<n>` only.
 * - For every configured topic (wildcard sections by their pattern) and every topic with data on disk, and for a
 *   topic first seen through a put soon after that put: `brokers/topics/<t>/<id>-m` (`<numPartitions>`) and, when
 *   the topic accepts them, `brokers/topics-pub/<t>/<id>-m` and `brokers/topics-sub/<t>/<id>-m` (`{"numParts":N,...}`).
 *
 * Guarantees: {@link BrokerRegistry.start} resolves only once everything is registered, and rejects with a
 * CoordinationError when ZooKeeper is unreachable within zk.zkConnectionTimeoutMs or another live broker holds this
 * id. After a session expiry everything is registered again on the new session (retrying until it works or the
 * broker stops). {@link BrokerRegistry.unregister} removes only nodes this session holds, so a broker that lost its
 * id to another one never deletes the other's registration.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { CoordinationError } from '../../sdk/errors.js';
import { encodeTopicRegistration, ZkPaths, type TopicRegistryKind } from '../../sdk/protocol/zk/zk-layout.js';
import { ZkSession, zkCodeOf } from '../../sdk/protocol/zk/zk-session.js';
import type { BrokerConfig } from '../config/broker-config.js';
import type { MessageStore } from '../store/message-store.js';
import { topicRegistrations, type TopicRegistration } from './topic-registrations.js';

export interface BrokerRegistryOptions {
  readonly config: BrokerConfig;
  readonly store: MessageStore;
  /** `meta://host:port` with the bound port. */
  readonly brokerUrl: string;
  /** CRC32 of server.ini (BrokerContext.configChecksum). */
  readonly configChecksum: number;
  readonly logger: Logger;
}

const KINDS: readonly TopicRegistryKind[] = ['topics', 'topics-pub', 'topics-sub'];
/** Topics registered at once (each is three pipelined requests). */
const TOPIC_BATCH = 256;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5000;
const UNREGISTER_LIMIT_MS = 10_000;

/** See the file comment. */
export class BrokerRegistry {
  private readonly paths: ZkPaths;
  private readonly brokerId: number;
  /** `system.slaveId` of a slave (it registers as slave `<n>` of `brokerId`); undefined on a master or once promoted. */
  private slaveId: number | undefined;
  /** Sync replication with a failing slave: `topics-pub` nodes withdrawn so that producers go elsewhere. */
  private publishWithdrawn = false;
  /** During a promotion: registration nodes held by another session (the dead master's) are removed, not refused. */
  private evictForeign = false;
  private readonly logger: Logger;
  private config: BrokerConfig;
  /** What is registered (or being registered) per topic. */
  private readonly registered = new Map<string, TopicRegistration>();
  private readonly pendingTopics = new Set<string>();
  private fullPending = false;
  private draining: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private stopped = false;
  private unsubscribe: () => void = () => undefined;

  private constructor(readonly session: ZkSession, private readonly options: BrokerRegistryOptions) {
    this.config = options.config;
    this.brokerId = options.config.system.brokerId;
    this.slaveId = options.config.system.slaveId >= 0 ? options.config.system.slaveId : undefined;
    this.logger = options.logger;
    this.paths = new ZkPaths(options.config.zookeeper.zkRoot);
  }

  /**
   * Opens the session and registers the broker and its topics. Rejects with a CoordinationError (and leaves
   * nothing registered) when ZooKeeper cannot be reached or the id is taken by another live broker.
   */
  static async start(options: BrokerRegistryOptions): Promise<BrokerRegistry> {
    const zk = options.config.zookeeper;
    const id = options.config.system.brokerId;
    let session: ZkSession;
    try {
      session = await ZkSession.open({ connect: zk.zkConnect, sessionTimeoutMs: zk.zkSessionTimeoutMs,
        connectTimeoutMs: zk.zkConnectionTimeoutMs, logger: options.logger.child({ component: 'zk' }) });
    } catch (err) {
      throw new CoordinationError(zkCodeOf(err), `broker ${id} cannot register: ZooKeeper at ${zk.zkConnect} ` +
        `unreachable within ${zk.zkConnectionTimeoutMs} ms (zk.zkConnectionTimeoutMs)`, { cause: err });
    }
    const registry = new BrokerRegistry(session, options);
    // Before the first registration: a session replaced while it runs must register everything again.
    registry.unsubscribe = session.onSession((e) => {
      if (e.type === 'lost') {
        registry.logger.warn({ sessionId: e.sessionId, reason: e.reason }, 'ZooKeeper session lost: broker registration gone until a new session');
      } else if (!e.first) {
        registry.logger.info({ sessionId: e.sessionId }, 'new ZooKeeper session: registering the broker again');
        registry.fullPending = true;
        registry.kick();
      }
    });
    try {
      await registry.registerBroker();
      options.store.onTopicAdded = (topic) => registry.topicSeen(topic);
      await registry.registerTopics(topicRegistrations(registry.config, options.store, registry.startTopics()));
    } catch (err) {
      registry.stopped = true;
      registry.unsubscribe();
      options.store.onTopicAdded = undefined;
      await registry.unregisterNodes().catch(() => undefined);
      await session.close().catch(() => undefined);
      throw err;
    }
    options.logger.info({ brokerId: id, url: options.brokerUrl, topics: registry.registered.size,
      zkConnect: zk.zkConnect, zkRoot: registry.paths.root }, 'broker registered in ZooKeeper');
    return registry;
  }

  /** Resolves once no registration work is pending or running (it may be waiting for a new session). */
  async idle(): Promise<void> {
    while (this.draining !== undefined) await this.draining;
  }

  /**
   * A topic the store just gained (first partition created by a put): registers it soon, in the background.
   * Cheap when the topic is known.
   */
  topicSeen(topic: string): void {
    if (this.stopped || this.registered.has(topic) || this.pendingTopics.has(topic)) return;
    this.pendingTopics.add(topic);
    this.kick();
  }

  /**
   * After a config reload: registers topics whose registration changed (partition count, publish / subscribe)
   * and newly configured ones, and removes topics no section accepts any more unless they have data.
   */
  async reloadTopics(config: BrokerConfig): Promise<void> {
    this.config = config;
    const names = new Set([...this.registered.keys(), ...this.startTopics()]);
    const wanted = topicRegistrations(config, this.options.store, names);
    const changed = wanted.filter((w) => {
      const r = this.registered.get(w.topic);
      return r === undefined || r.numParts !== w.numParts || r.publish !== w.publish || r.subscribe !== w.subscribe;
    });
    const kept = new Set(wanted.map((w) => w.topic));
    const gone = [...this.registered.keys()].filter((t) => !kept.has(t));
    await this.idle();
    for (const t of gone) {
      this.registered.delete(t);
      await this.removeTopicNodes(t);
    }
    await this.registerTopics(changed);
  }

  /** Removes this master's `topics-pub` nodes (producers stop choosing it) until {@link restorePublish}. */
  async withdrawPublish(): Promise<void> {
    this.publishWithdrawn = true;
    await this.idle();
    await Promise.all([...this.registered.keys()].map((t) =>
      this.removeOwned(this.paths.topicBroker('topics-pub', t, this.brokerId, this.slaveId))));
  }

  /** Registers the `topics-pub` nodes {@link withdrawPublish} removed. */
  async restorePublish(): Promise<void> {
    this.publishWithdrawn = false;
    await this.idle();
    await this.registerTopics([...this.registered.values()]);
  }

  /**
   * Failover: this slave's registration becomes the master's. Its `slave<n>` and `<id>-s<n>` nodes go; the master
   * nodes (`master`, the checksum, every topic's `<id>-m`) are created, removing those still held by the old master's
   * session (dead, but not expired yet).
   */
  async becomeMaster(): Promise<void> {
    const slaveId = this.slaveId;
    if (slaveId === undefined) return;
    await this.idle();
    await Promise.all([...this.registered.keys()].map((t) => this.removeTopicNodes(t)));
    await this.removeOwned(this.paths.brokerSlave(this.brokerId, slaveId));
    this.slaveId = undefined;
    this.evictForeign = true;
    try {
      await this.ephemeral(this.paths.brokerMaster(this.brokerId), this.options.brokerUrl);
      await this.registerRest(this.options.brokerUrl);
      await this.registerTopics([...this.registered.values()]);
    } finally {
      this.evictForeign = false;
    }
    this.logger.info({ brokerId: this.brokerId, url: this.options.brokerUrl, topics: this.registered.size },
      'promoted: registered as the master in ZooKeeper');
  }

  /** Stops registering and removes this broker's nodes (only those this session holds). */
  async unregister(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    clearTimeout(this.retryTimer);
    this.options.store.onTopicAdded = undefined;
    await this.idle();
    if (!this.session.isAlive) {
      this.logger.warn('no live ZooKeeper session at shutdown: registration left to expire with its session');
      return;
    }
    // A ZooKeeper that stopped answering must not hold the shutdown for long: the session's expiry removes the rest.
    const limitMs = Math.min(this.config.zookeeper.zkSessionTimeoutMs, UNREGISTER_LIMIT_MS);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), limitMs); });
    const outcome = await Promise.race([this.unregisterNodes(), late]).finally(() => clearTimeout(timer));
    if (outcome === 'late') {
      this.logger.warn({ limitMs }, 'unregistering from ZooKeeper took too long: the rest goes when the session closes');
      return;
    }
    this.logger.info({ brokerId: this.brokerId }, 'broker unregistered from ZooKeeper');
  }

  /** Unregisters (when not done yet) and closes the session. Idempotent. */
  async close(): Promise<void> {
    if (!this.stopped) await this.unregister().catch((err: unknown) => this.logger.warn({ err }, 'unregistering failed'));
    if (!this.session.closed) await this.session.close();
  }

  // ---- registration ----

  /** Configured topics (wildcard sections by their pattern) and topics with data on disk. */
  private startTopics(): Set<string> {
    const names = new Set<string>();
    // Wildcard sections too, by their pattern, as MetaQ does: `[topic=*]` registers a topic `*`, which is what lets a
    // producer send any topic with `defaultTopic: '*'` (MetaQ's FAQ recipe).
    for (const t of this.config.topics) names.add(t.name);
    for (const log of this.options.store.partitions()) names.add(log.topic);
    return names;
  }

  private async registerBroker(): Promise<void> {
    const url = this.options.brokerUrl;
    const slaveId = this.slaveId;
    const node = slaveId === undefined ? this.paths.brokerMaster(this.brokerId) : this.paths.brokerSlave(this.brokerId, slaveId);
    try {
      await this.ephemeral(node, url);
    } catch (err) {
      if (zkCodeOf(err) !== 'NODE_EXISTS') throw err;
      const holder = await this.session.getData(node).catch(() => undefined);
      // Nobody else can serve the host:port this broker is listening on: a node naming it is left by an earlier run
      // of this broker (killed, restarted before its session expired). Wait for ZooKeeper to expire that session.
      if (holder?.data.toString() === url && await this.awaitGone(node)) {
        await this.ephemeral(node, url);
        await this.registerRest(url);
        return;
      }
      throw new CoordinationError('NODE_EXISTS', `broker ${this.brokerId}${slaveId === undefined ? '' : ` slave ${slaveId}`} is ` +
        `already registered by another live broker (${node} = ${JSON.stringify(holder?.data.toString() ?? '?')}): ` +
        'each broker needs its own system.brokerId', { cause: err });
    }
    await this.registerRest(url);
  }

  /** The master's nodes beside its ephemeral `master` node. */
  private async registerRest(url: string): Promise<void> {
    if (this.slaveId !== undefined) return;
    await this.session.setData(this.paths.brokerIdDir(this.brokerId), url);
    await this.ephemeral(this.paths.brokerConfigChecksum(this.brokerId), String(this.options.configChecksum));
  }

  /** Polls until `path` is gone, for up to twice the session timeout; true when it went. */
  private async awaitGone(path: string): Promise<boolean> {
    const waitMs = 2 * this.config.zookeeper.zkSessionTimeoutMs;
    this.logger.warn({ path, waitMs }, 'registration of an earlier run of this broker still there: waiting for its session to expire');
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && !this.stopped) {
      if (await this.session.exists(path) === undefined) return true;
      await sleep(100);
    }
    return false;
  }

  private async registerTopics(list: readonly TopicRegistration[]): Promise<void> {
    for (const r of list) this.registered.set(r.topic, r);
    for (let i = 0; i < list.length; i += TOPIC_BATCH) {
      await Promise.all(list.slice(i, i + TOPIC_BATCH).map((r) => this.registerTopic(r)));
    }
  }

  private async registerTopic(r: TopicRegistration): Promise<void> {
    const slaveId = this.slaveId;
    const json = encodeTopicRegistration(r.numParts, this.brokerId, slaveId);
    const path = (k: TopicRegistryKind): string => this.paths.topicBroker(k, r.topic, this.brokerId, slaveId);
    await Promise.all([
      this.ephemeral(path('topics'), String(r.numParts)),
      // A slave never offers a topic to producers (MetaQ's did; its producers skipped `-s` nodes).
      r.publish && slaveId === undefined && !this.publishWithdrawn
        ? this.ephemeral(path('topics-pub'), json) : this.removeOwned(path('topics-pub')),
      r.subscribe ? this.ephemeral(path('topics-sub'), json) : this.removeOwned(path('topics-sub')),
    ]);
  }

  /** createEphemeral, making the parents first when they are missing (one round trip when they exist). */
  private async ephemeral(path: string, data: string): Promise<void> {
    try {
      await this.session.createEphemeral(path, data);
    } catch (err) {
      const code = zkCodeOf(err);
      if (code === 'NODE_EXISTS' && this.evictForeign) {
        const stat = await this.session.exists(path);
        if (stat !== undefined) await this.session.remove(path, stat.version);
        this.logger.warn({ path }, 'promotion: removed the old master\'s registration node');
      } else if (code === 'NO_NODE') {
        await this.session.ensurePath(path.slice(0, path.lastIndexOf('/')));
      } else {
        throw err;
      }
      await this.session.createEphemeral(path, data);
    }
  }

  // ---- background work: lazy topics and re-registration after a new session ----

  private kick(): void {
    if (this.draining !== undefined || this.stopped || this.retryTimer !== undefined) return;
    this.draining = this.drain().finally(() => { this.draining = undefined; });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.session.isAlive && (this.fullPending || this.pendingTopics.size > 0)) {
      const full = this.fullPending;
      const topics = [...this.pendingTopics];
      this.fullPending = false;
      this.pendingTopics.clear();
      try {
        if (full) {
          await this.registerBroker();
          await this.registerTopics(topicRegistrations(this.config, this.options.store,
            new Set([...this.registered.keys(), ...this.startTopics(), ...topics])));
          this.logger.info({ topics: this.registered.size }, 'broker registered again in ZooKeeper');
        } else {
          await this.registerTopics(topicRegistrations(this.config, this.options.store, topics));
          this.logger.info({ topics }, 'topic registered in ZooKeeper');
        }
        this.retryDelay = RETRY_MIN_MS;
      } catch (err) {
        if (full) this.fullPending = true;
        for (const t of topics) {
          this.pendingTopics.add(t);
          this.registered.delete(t);
        }
        if (this.stopped) return;
        this.logger.error({ err, retryInMs: this.retryDelay }, 'ZooKeeper registration failed; retrying');
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, this.retryDelay);
        this.retryTimer.unref();
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        return;
      }
    }
  }

  // ---- unregistration ----

  private async unregisterNodes(): Promise<void> {
    const slaveId = this.slaveId;
    const topics = [...this.registered.keys()];
    for (let i = 0; i < topics.length; i += TOPIC_BATCH) {
      await Promise.all(topics.slice(i, i + TOPIC_BATCH).map((t) => this.removeTopicNodes(t)));
    }
    if (slaveId !== undefined) {
      await this.removeOwned(this.paths.brokerSlave(this.brokerId, slaveId));
      return;
    }
    await this.removeOwned(this.paths.brokerConfigChecksum(this.brokerId));
    if (!(await this.removeOwned(this.paths.brokerMaster(this.brokerId)))) return;
    // As MetaQ: the id node goes with its master, or keeps an empty URL while slaves are registered under it.
    const idDir = this.paths.brokerIdDir(this.brokerId);
    try {
      await this.session.remove(idDir);
    } catch (err) {
      if (zkCodeOf(err) !== 'NOT_EMPTY') throw err;
      await this.session.setData(idDir, '');
    }
  }

  private async removeTopicNodes(topic: string): Promise<void> {
    await Promise.all(KINDS.map((k) => this.removeOwned(this.paths.topicBroker(k, topic, this.brokerId, this.slaveId))));
  }

  /** Removes an ephemeral node only when this session holds it; true when it did. */
  private async removeOwned(path: string): Promise<boolean> {
    const stat = await this.session.exists(path);
    if (stat === undefined || !this.session.ownsEphemeral(stat)) return false;
    return this.session.remove(path, stat.version);
  }
}
