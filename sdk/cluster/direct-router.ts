import { BrokerError, ConnectionError, UnknownTopicError } from '../errors.js';
import type { Partition } from '../message.js';
import { encodeStats } from '../protocol/encode.js';
import type { Response } from '../protocol/commands.js';
import type { BrokerRouter, Link } from './broker-router.js';

/** How long a topic's partition list is trusted before it is asked again. */
const PARTITIONS_TTL_MS = 30_000;

/**
 * The router of a client connected straight to one broker (`serverUrl: 'meta://host:port'`): every partition of
 * every topic is on that broker. The broker's id and a topic's partition count come from its `stats` answers.
 *
 * @example
 * ```ts
 * const router = await DirectRouter.start(link);
 * await router.partitionsForPublish('orders'); // [{ brokerId: 0, partition: 0 }, ...]
 * ```
 */
export class DirectRouter implements BrokerRouter {
  private readonly cache = new Map<string, { partitions: readonly Partition[]; expires: number }>();

  private constructor(private readonly theLink: Link & { close(): Promise<void> }, readonly brokerId: number) {}

  /** Asks the broker for its id; fails as the link does when the broker cannot be reached. */
  static async start(link: Link & { close(): Promise<void> }): Promise<DirectRouter> {
    const lines = statsLines(await link.request((opaque) => encodeStats({ item: '', opaque })), link.url);
    const id = Number(lines.get('broker_id'));
    if (!Number.isInteger(id)) throw new ConnectionError(`${link.url} did not report its broker_id`);
    return new DirectRouter(link, id);
  }

  partitionsForPublish(topic: string): Promise<readonly Partition[]> {
    return this.partitions(topic);
  }

  partitionsForSubscribe(topic: string): Promise<readonly Partition[]> {
    return this.partitions(topic);
  }

  link(brokerId: number): Link {
    if (brokerId !== this.brokerId) {
      throw new ConnectionError(`broker ${brokerId} is unknown: this client is connected to broker ${this.brokerId} only`);
    }
    return this.theLink;
  }

  links(): ReadonlyMap<number, Link> {
    return new Map([[this.brokerId, this.theLink]]);
  }

  close(): Promise<void> {
    return this.theLink.close();
  }

  private async partitions(topic: string): Promise<readonly Partition[]> {
    const now = Date.now();
    const hit = this.cache.get(topic);
    if (hit !== undefined && hit.expires > now) return hit.partitions;
    const lines = statsLines(await this.theLink.request((opaque) => encodeStats({ item: topic, opaque })), this.theLink.url);
    // resultCode: 0 has data, 1 unknown, 2 configured without data (stats of a topic, see the broker's admin handler).
    const count = Number(lines.get('partitions') ?? 0);
    if (lines.get('resultCode') === '1' || count === 0) throw new UnknownTopicError(topic);
    const partitions = Array.from({ length: count }, (_, partition) => ({ brokerId: this.brokerId, partition }));
    this.cache.set(topic, { partitions, expires: now + PARTITIONS_TTL_MS });
    return partitions;
  }
}

/** The `key value` lines of a stats answer. */
function statsLines(r: Response, url: string): Map<string, string> {
  if (r.type !== 'result' || r.code !== 200) {
    throw r.type === 'result' ? new BrokerError(r.code, r.body.toString()) : new ConnectionError(`${url} answered stats with a message set`);
  }
  const out = new Map<string, string>();
  for (const line of r.body.toString().split('\r\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) out.set(line.slice(0, sp), line.slice(sp + 1));
  }
  return out;
}
