/**
 * What the producer remembers per topic, so the send path never awaits the router for a known topic: the checked
 * `put <topic> ` prefix and the partition list. Every {@link REFRESH_EVERY} sends the list is asked of the router
 * again in the background; how fresh that is, is the router's business (its own cache and watches). Until the answer
 * comes (and if it fails) the last list is used.
 */
import type { Logger } from 'pino';
import type { BrokerRouter } from '../cluster/broker-router.js';
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
}

/**
 * The per-topic state of a producer.
 *
 * @example
 * ```ts
 * const topics = new TopicCache(router, logger);
 * const t = topics.get('orders');            // checks the name (InvalidArgumentError)
 * if (t.partitions === undefined) await topics.load(t);
 * ```
 */
export class TopicCache {
  private readonly topics = new Map<string, TopicState>();
  private lastTopic: TopicState | undefined;
  private calls = 0;

  constructor(private readonly router: BrokerRouter, private readonly logger: Logger) {}

  /** The state of `name`, created (and the name checked) on first use; now and then starts a refresh. */
  get(name: string): TopicState {
    let t = this.lastTopic;
    if (t === undefined || t.name !== name) {
      t = this.topics.get(name);
      if (t === undefined) {
        t = { name, prefix: putPrefix(name), partitions: undefined, loading: undefined };
        this.topics.set(name, t);
      }
      this.lastTopic = t;
    }
    if ((++this.calls & (REFRESH_EVERY - 1)) === 0 && t.partitions !== undefined && t.loading === undefined) {
      this.load(t).catch((err: unknown) => {
        this.logger.warn({ topic: name, err }, 'refreshing the partitions of a topic failed; keeping the old list');
      });
    }
    return t;
  }

  /** Loads (or reloads) the partition list; concurrent calls share one request to the router. */
  load(t: TopicState): Promise<readonly Partition[]> {
    t.loading ??= this.router.partitionsForPublish(t.name).then((partitions) => {
      t.partitions = partitions;
      t.loading = undefined;
      return partitions;
    }, (err: unknown) => {
      t.loading = undefined;
      throw err;
    });
    return t.loading;
  }
}
