/**
 * MetaQ's TopicBrowser: every message of a topic, partition after partition, from each partition's first offset to
 * the end it had when browsing started, then completion. It reads with plain `get`s outside any group (see
 * fetch-once.ts) and never waits on the broker's long poll: the ends come from `stats offsets` first, and no `get`
 * is sent at an end.
 */
import { Observable } from 'rxjs';
import type { ClientContext } from '../client/client-context.js';
import type { Deserializer } from '../codec/serializers.js';
import { BrokerError, ShuttingDownError } from '../errors.js';
import type { Message, Partition } from '../message.js';
import { encodeStats } from '../protocol/encode.js';
import { fetchOnce, type FetchOnceOptions } from './fetch-once.js';

/**
 * Options of {@link browseTopic}.
 *
 * @example
 * ```ts
 * // One partition only, in 256 KiB gets.
 * client.browse('orders', { partitions: [{ brokerId: 0, partition: 1 }], maxSize: 256 * 1024 })
 *   .subscribe((m) => console.log(m.offset, m.value.toString()));
 * ```
 */
export interface BrowseOptions<V = Buffer> {
  /** Bytes per `get`; default 1 MiB. Larger messages are still fetched whole. */
  readonly maxSize?: number;
  /** Timeout of each request; default the client's requestTimeoutMs. */
  readonly timeoutMs?: number;
  /** Browse only these partitions, in this order; default every partition of the topic. */
  readonly partitions?: readonly Partition[];
  /** Default: the payload Buffer as is. */
  readonly deserializer?: Deserializer<V>;
}

/** The readable range of one partition, as `stats offsets` reports it. */
interface OffsetRange {
  readonly min: number;
  readonly max: number;
}

/**
 * A cold Observable of every message of `topic` in log order per partition, which completes at the end the
 * partitions had when it was subscribed. Messages written later are not included. Unsubscribing stops the reads.
 *
 * @example
 * ```ts
 * browseTopic(ctx, 'orders').pipe(take(10)).subscribe((m) => console.log(partitionName(m.partition), m.offset));
 * const all = await lastValueFrom(browseTopic(ctx, 'orders').pipe(toArray()));
 * ```
 */
export function browseTopic<V = Buffer>(ctx: ClientContext, topic: string, o: BrowseOptions<V> = {}):
Observable<Message<V>> {
  return new Observable<Message<V>>((subscriber) => {
    let stopped = false;
    const fetchOptions: FetchOnceOptions<V> = {
      ...(o.maxSize === undefined ? {} : { maxSize: o.maxSize }),
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
      ...(o.deserializer === undefined ? {} : { deserializer: o.deserializer }),
    };
    const browse = async (): Promise<void> => {
      if (ctx.closing) throw new ShuttingDownError('the client');
      const partitions = o.partitions ?? await ctx.router.partitionsForSubscribe(topic);
      const ranges = await offsetRanges(ctx, topic, partitions, o.timeoutMs);
      for (const p of partitions) {
        const range = ranges.get(key(p.brokerId, p.partition));
        if (range === undefined) continue;
        let offset = range.min;
        while (offset < range.max && !stopped) {
          const r = await fetchOnce(ctx, topic, p, offset, fetchOptions);
          if (stopped) return;
          for (const m of r.messages) {
            // The window may reach past the end known at the start: leave those for a later browse.
            if (m.offset >= range.max || stopped) break;
            subscriber.next(m);
          }
          // No progress would loop forever: the range shrank under us (retention ran), so this partition is done.
          if (r.nextOffset <= offset) break;
          offset = r.nextOffset;
        }
        if (stopped) return;
      }
    };
    browse().then(() => subscriber.complete(), (e: unknown) => subscriber.error(e));
    return () => {
      stopped = true;
    };
  });
}

function key(brokerId: number, partition: number): string {
  return `${brokerId}-${partition}`;
}

/**
 * `min_offset`/`max_offset` of the topic's partitions, from `stats offsets` of each broker involved. A partition the
 * broker does not list has never been written: it has nothing to browse.
 */
async function offsetRanges(ctx: ClientContext, topic: string, partitions: readonly Partition[],
  timeoutMs: number | undefined): Promise<Map<string, OffsetRange>> {
  const out = new Map<string, OffsetRange>();
  const brokers = [...new Set(partitions.map((p) => p.brokerId))];
  await Promise.all(brokers.map(async (brokerId) => {
    const r = await ctx.router.link(brokerId, true).request((opaque) => encodeStats({ item: 'offsets', opaque }),
      timeoutMs ?? ctx.options.requestTimeoutMs);
    if (r.type !== 'result' || r.code !== 200) {
      throw new BrokerError(r.type === 'result' ? r.code : 500,
        r.type === 'result' ? r.body.toString() : 'stats offsets answered with a message set');
    }
    // Lines: `<topic> part <P> min_offset <A> max_offset <B>`; topic names hold no spaces.
    const prefix = `${topic} part `;
    for (const line of r.body.toString('utf8').split('\r\n')) {
      if (!line.startsWith(prefix)) continue;
      const f = line.split(' ');
      const partition = Number(f[2]);
      const min = Number(f[4]);
      const max = Number(f[6]);
      if (f[3] !== 'min_offset' || f[5] !== 'max_offset' || ![partition, min, max].every(Number.isSafeInteger)) {
        throw new BrokerError(200, `unexpected stats offsets line: ${line}`);
      }
      out.set(key(brokerId, partition), { min, max });
    }
  }));
  return out;
}
