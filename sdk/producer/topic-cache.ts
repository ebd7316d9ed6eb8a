/**
 * What the producer remembers per topic, so the send path never awaits the router for a known topic: the checked
 * `put <topic> ` prefix and the partition list. The list is asked of the router again in the background when the
 * router's `topologyVersion` moved (the cluster router's watches fired: a broker came or went), and otherwise every
 * {@link REFRESH_EVERY} sends; how fresh the router's answer is, is the router's business. Until the answer comes
 * (and if it fails) the last list is used.
 *
 * A topic no broker registered goes to the partitions of the producer's default topic, when it has one (MetaQ's
 * `setDefaultTopic`): the put still names the topic itself, and once the topic is registered its own partitions
 * are used.
 */
import type { Logger } from 'pino';
import type { BrokerRouter } from '../cluster/broker-router.js';
import { UnknownTopicError } from '../errors.js';
import type { Partition } from '../message.js';
import { putPrefix } from '../protocol/put-frame.js';

/** Sends between two background refreshes of a topic's partition list (a power of two). */
export const REFRESH_EVERY = 1024;

/** One topic as the producer knows it. */
export interface TopicState {
  readonly name: string;
  /** `put <topic> ` */
  readonly prefix: Buffer;
  /** Undefined until first loaded. */
  partitions: readonly Partition[] | undefined;
  loading: Promise<readonly Partition[]> | undefined;
  /** The router's topologyVersion when the list was last asked for. */
  version: number | undefined;
}

/**
 * The per-topic state of a producer.
 *
 * @example
 * ```ts
 * const topics = new TopicCache(router, logger, 'fallback-topic');
 * const t = topics.get('orders');            // checks the name (InvalidArgumentError)
 * if (t.partitions === undefined) await topics.load(t);
 * ```
 */
export class TopicCache {
  private readonly topics = new Map<string, TopicState>();
  private lastTopic: TopicState | undefined;
  private calls = 0;

  constructor(private readonly router: BrokerRouter, private readonly logger: Logger,
    private readonly defaultTopic?: string) {}

  /** The state of `name`, created (and the name checked) on first use; starts a refresh when one is due. */
  get(name: string): TopicState {
    let t = this.lastTopic;
    if (t === undefined || t.name !== name) {
      t = this.topics.get(name);
      if (t === undefined) {
        t = { name, prefix: putPrefix(name), partitions: undefined, loading: undefined, version: undefined };
        this.topics.set(name, t);
      }
      this.lastTopic = t;
    }
    if ((t.version !== this.router.topologyVersion || (++this.calls & (REFRESH_EVERY - 1)) === 0) &&
        t.partitions !== undefined && t.loading === undefined) {
      this.load(t).catch((err: unknown) => {
        this.logger.warn({ topic: name, err }, 'refreshing the partitions of a topic failed; keeping the old list');
      });
    }
    return t;
  }

  /** Loads (or reloads) the partition list; concurrent calls share one request to the router. */
  load(t: TopicState): Promise<readonly Partition[]> {
    if (t.loading !== undefined) return t.loading;
    // Taken before asking: a change while the answer is on its way moves the version again and asks again.
    t.version = this.router.topologyVersion;
    t.loading = this.ask(t.name).then((partitions) => {
      t.partitions = partitions;
      t.loading = undefined;
      return partitions;
    }, (err: unknown) => {
      t.loading = undefined;
      throw err;
    });
    return t.loading;
  }

  private async ask(topic: string): Promise<readonly Partition[]> {
    try {
      return await this.router.partitionsForPublish(topic);
    } catch (err) {
      const fallback = this.defaultTopic;
      if (!(err instanceof UnknownTopicError) || fallback === undefined || fallback === topic) throw err;
      try {
        return await this.router.partitionsForPublish(fallback);
      } catch (err2) {
        if (err2 instanceof UnknownTopicError) throw err;  // name the topic that was sent, not the fallback
        throw err2;
      }
    }
  }
}
