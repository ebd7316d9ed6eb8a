import pino, { type Logger } from 'pino';
import { DirectRouter } from '../cluster/direct-router.js';
import type { BrokerRouter } from '../cluster/broker-router.js';
import { ZkRouter } from '../cluster/zk-router.js';
import { CLIENT_DEFAULTS, type AsyncProducerOptions, type ClientOptions, type ConsumerOptions, type ProducerOptions } from '../config.js';
import { ConfigError, ShuttingDownError } from '../errors.js';
import type { Message, Partition } from '../message.js';
import { BrokerLink, type BrokerLinkOptions } from '../network/broker-link.js';
import { parseBrokerUrl } from '../protocol/broker-url.js';
import { AsyncProducer } from '../producer/async-producer.js';
import { Producer } from '../producer/producer.js';
import { Consumer } from '../consumer/consumer.js';
import { fetchOnce, type FetchOnceOptions, type FetchOnceResult } from '../consumer/fetch-once.js';
import { browseTopic, type BrowseOptions } from '../consumer/topic-browser.js';
import { ZkPaths } from '../protocol/zk/zk-layout.js';
import { ZkSession } from '../protocol/zk/zk-session.js';
import type { Observable } from 'rxjs';
import type { ClientContext, Closeable, ClusterContext, ResolvedClientOptions } from './client-context.js';

/**
 * A connection to a metaq broker (or, with `zkConnect`, a cluster): the factory of producers and consumers. One
 * client keeps one connection per broker, shared by everything it made; `close()` closes all of it.
 *
 * @example
 * ```ts
 * const client = await createClient({ serverUrl: 'meta://127.0.0.1:8123' });
 * const producer = client.producer();
 * await producer.send({ topic: 'orders', value: 'hello' });
 * await client.close();
 * ```
 */
export class MetaqClient {
  private readonly owned = new Set<Closeable>();
  private closing: Promise<void> | undefined;
  private readonly ctx: ClientContext;

  /** @internal use {@link createClient} */
  constructor(router: BrokerRouter, logger: Logger, options: ResolvedClientOptions, cluster?: ClusterContext) {
    const owned = this.owned;
    const isClosing = (): boolean => this.closing !== undefined;
    this.ctx = {
      router,
      cluster,
      logger,
      options,
      get closing() { return isClosing(); },
      own(resource) {
        owned.add(resource);
        return () => { owned.delete(resource); };
      },
    };
  }

  /**
   * A producer: `send` one message and get its SendResult, or pipe a stream through `sendAll()`.
   *
   * @example
   * ```ts
   * const producer = client.producer({ partitioner: 'hash' });
   * const r = await producer.send({ topic: 'orders', key: 'customer-7', value: JSON.stringify(order) });
   * ```
   */
  producer<V = Buffer | string>(options: ProducerOptions<V> = {}): Producer<V> {
    this.checkOpen();
    return new Producer<V>(this.ctx, options);
  }

  /**
   * A one-way producer: `send` returns at once; messages go out through a sliding window and are spooled to disk
   * while the broker is unreachable, then resent in order.
   *
   * @example
   * ```ts
   * const logs = client.asyncProducer();
   * logs.send({ topic: 'app-logs', value: line });
   * ```
   */
  asyncProducer<V = Buffer | string>(options: AsyncProducerOptions<V> = {}): AsyncProducer<V> {
    this.checkOpen();
    return new AsyncProducer<V>(this.ctx, options);
  }

  /**
   * A consumer of a group: `messages$(topic)` as an Observable of deliveries, or `subscribe(topic, handler)`.
   *
   * @example
   * ```ts
   * const consumer = client.consumer({ group: 'billing' });
   * consumer.subscribe('orders', async (m) => bill(JSON.parse(m.value.toString())));
   * ```
   */
  consumer<V = Buffer>(options: ConsumerOptions<V>): Consumer<V> {
    this.checkOpen();
    return new Consumer<V>(this.ctx, options);
  }

  /**
   * Active pull: the messages of one partition from `offset`, with no group and no offset bookkeeping.
   *
   * @example
   * ```ts
   * const { messages, nextOffset } = await client.get('orders', 0, 0);
   * ```
   */
  get(topic: string, partition: Partition | number, offset: number, options: FetchOnceOptions = {}): Promise<FetchOnceResult> {
    this.checkOpen();
    return fetchOnce(this.ctx, topic, partition, offset, options);
  }

  /**
   * Every message of a topic, partition after partition from the first offset to the end, then completes.
   *
   * @example
   * ```ts
   * client.browse('orders').subscribe((m) => console.log(m.offset, m.value.toString()));
   * ```
   */
  browse(topic: string, options: BrowseOptions = {}): Observable<Message> {
    this.checkOpen();
    return browseTopic(this.ctx, topic, options);
  }

  /**
   * The partitions of a topic that producers may send to.
   *
   * @example
   * ```ts
   * (await client.partitionsFor('orders')).map(partitionName); // ['0-0', '0-1', '0-2', '0-3']
   * ```
   */
  partitionsFor(topic: string): Promise<readonly Partition[]> {
    this.checkOpen();
    return this.ctx.router.partitionsForPublish(topic);
  }

  /** Closes every producer and consumer this client made (consumers commit first), then the connections. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const r of [...this.owned].reverse()) {
        try {
          await r.close();
        } catch (e) {
          this.ctx.logger.warn({ err: e }, 'closing a client resource failed');
        }
      }
      this.owned.clear();
      await this.ctx.router.close();
    })();
    return this.closing;
  }

  private checkOpen(): void {
    if (this.closing !== undefined) throw new ShuttingDownError('the client');
  }
}

/**
 * Connects to a broker (`serverUrl`) or a cluster (`zkConnect`) and returns the client.
 *
 * - `serverUrl: 'meta://host:port'`: one broker, every partition on it; resolves once connected and the broker
 *   told its id, rejects with ConnectionError when it cannot be reached.
 * - `zkConnect: 'host:port[,host:port...][/chroot]'`: a cluster registered under `zkRoot` (default `/meta`).
 *   Brokers, topics and partitions are discovered from ZooKeeper and followed while the client runs (a broker added
 *   later receives messages without restarting anything); consumer groups rebalance there. Rejects with a
 *   CoordinationError naming the connect string when no ZooKeeper session is up within `zkConnectionTimeoutMs`.
 *
 * Giving both is a ConfigError; so is giving neither.
 *
 * @example
 * ```ts
 * const client = await createClient({ serverUrl: 'meta://127.0.0.1:8123' });
 * const cluster = await createClient({ zkConnect: '10.0.0.5:2181,10.0.0.6:2181', zkRoot: '/meta' });
 * ```
 */
export async function createClient(options: ClientOptions): Promise<MetaqClient> {
  if (options.serverUrl !== undefined && options.zkConnect !== undefined) {
    throw new ConfigError('createClient takes serverUrl (one broker) or zkConnect (a cluster), not both');
  }
  if (options.serverUrl === undefined && options.zkConnect === undefined) {
    throw new ConfigError('createClient needs serverUrl (meta://host:port) or zkConnect (host:port[,host:port...])');
  }
  const setup = resolveClientOptions(options);
  if (options.zkConnect !== undefined) {
    const zk = await ZkSession.open({
      connect: options.zkConnect,
      sessionTimeoutMs: options.zkSessionTimeoutMs ?? CLIENT_DEFAULTS.zkSessionTimeoutMs,
      connectTimeoutMs: options.zkConnectionTimeoutMs ?? CLIENT_DEFAULTS.zkConnectionTimeoutMs,
      logger: setup.logger,
    });
    return startCluster(zk, options, setup);
  }
  const link = new BrokerLink(parseBrokerUrl(options.serverUrl!), setup.linkOptions);
  try {
    await link.whenConnected();
    return new MetaqClient(await DirectRouter.start(link), setup.logger, setup.resolved);
  } catch (e) {
    await link.close();
    throw e;
  }
}

/**
 * @internal A cluster client over a ZooKeeper session already open (tests open their own, to expire it). `zkConnect`
 * and the `zk*` timeouts of `options` are not used; the client owns the session and closes it, also when this fails.
 */
export function clusterClient(zk: ZkSession, options: ClientOptions): Promise<MetaqClient> {
  return startCluster(zk, options, resolveClientOptions(options));
}

interface ClientSetup {
  readonly logger: Logger;
  readonly resolved: ResolvedClientOptions;
  readonly linkOptions: BrokerLinkOptions;
}

/** Every default filled in: the logger, what producers and consumers read, and the options of each broker link. */
function resolveClientOptions(options: ClientOptions): ClientSetup {
  const logger = options.logger ?? pino({ level: process.env.METAQ_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const resolved: ResolvedClientOptions = {
    requestTimeoutMs: options.requestTimeoutMs ?? CLIENT_DEFAULTS.requestTimeoutMs,
    recoverDir: options.recoverDir ?? CLIENT_DEFAULTS.recoverDir,
    offsetsFile: options.offsetsFile ?? CLIENT_DEFAULTS.offsetsFile,
  };
  const linkOptions: BrokerLinkOptions = {
    connectTimeoutMs: options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
    requestTimeoutMs: resolved.requestTimeoutMs,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? CLIENT_DEFAULTS.heartbeatIntervalMs,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? CLIENT_DEFAULTS.heartbeatTimeoutMs,
    reconnect: { ...CLIENT_DEFAULTS.reconnect, ...options.reconnect },
    maxResponseBytes: options.maxResponseBytes ?? CLIENT_DEFAULTS.maxResponseBytes,
    logger,
  };
  return { logger, resolved, linkOptions };
}

/** Cluster mode: the router over the session, and the client carrying both. */
async function startCluster(zk: ZkSession, options: ClientOptions, setup: ClientSetup): Promise<MetaqClient> {
  const paths = new ZkPaths(options.zkRoot ?? CLIENT_DEFAULTS.zkRoot);
  try {
    const router = await ZkRouter.start({
      zk, paths, linkOptions: setup.linkOptions, logger: setup.logger, readTimeoutMs: setup.resolved.requestTimeoutMs,
    });
    return new MetaqClient(router, setup.logger, setup.resolved, { zk, paths });
  } catch (e) {
    await zk.close();
    throw e;
  }
}
