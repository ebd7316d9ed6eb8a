/**
 * Active pull (MetaQ's `MessageConsumer.get`): one `get` of one partition from an offset, outside any group. No
 * offset is loaded or committed; the caller keeps `nextOffset`.
 *
 * Replies of `get` (broker/server/fetch-handler.ts):
 * ```
 * value <len> <opaque>    a byte window of the log from the offset (its last record may be cut)
 * result 404 ...          "Could not find message at position N": the end of the log (at once for this group)
 *                         "The topic `t` in partition `p` is not exists": unknown topic or partition
 * result 301 <offset>     the offset is outside the log: continue at <offset>
 * result 403 ...          the partition is closed
 * result 400/500/503/504  bad request, broker failure, overload
 * ```
 */
import { CONSUMER_DEFAULTS } from '../config.js';
import type { ClientContext } from '../client/client-context.js';
import { Deserializers, type Deserializer } from '../codec/serializers.js';
import {
  BrokerError, InvalidArgumentError, MessageTooLargeError, PartitionClosedError, ShuttingDownError, UnknownTopicError,
  WrongPartitionError,
} from '../errors.js';
import type { Message, Partition } from '../message.js';
import type { Response } from '../protocol/commands.js';
import { encodeGet } from '../protocol/encode.js';
import { decodeMessages } from './decode-messages.js';

/**
 * The group named in the `get`s of {@link fetchOnce} and the topic browser: MetaQ's browser uses the same one. A
 * broker keeps no state per group, so it only shows up in the broker's logs and statistics.
 *
 * @example
 * ```ts
 * // Leave the SDK's own pulls and browses out of consumer-lag alerts.
 * const alertable = groups.filter((g) => g !== BROWSER_GROUP);
 * ```
 */
export const BROWSER_GROUP = 'Just_for_Browser';

/** Default bytes asked for by {@link fetchOnce}. */
export const FETCH_ONCE_DEFAULT_MAX_SIZE = 1024 * 1024;

/**
 * Options of {@link fetchOnce}.
 *
 * @example
 * ```ts
 * // Small windows for a paged UI; a first message larger than 64 KiB still comes whole.
 * const page = await client.get('orders', 0, offset, { maxSize: 64 * 1024, timeoutMs: 2_000 });
 * ```
 */
export interface FetchOnceOptions<V = Buffer> {
  /** Bytes to fetch; default 1 MiB. A first message larger than this is fetched whole by a second, larger get. */
  readonly maxSize?: number;
  /** Timeout of each get; default the client's requestTimeoutMs. */
  readonly timeoutMs?: number;
  /** Default: the payload Buffer as is. */
  readonly deserializer?: Deserializer<V>;
}

/**
 * What {@link fetchOnce} found.
 *
 * @example
 * ```ts
 * const r = await client.get('orders', 0, offset);
 * if (r.movedTo !== undefined) log.warn(`offset ${offset} is gone (retention); continuing at ${r.movedTo}`);
 * offset = r.nextOffset;   // no group: the caller keeps the position, nothing is committed
 * ```
 */
export interface FetchOnceResult<V = Buffer> {
  /** The whole messages of the window, in log order; empty at the end of the log. */
  readonly messages: Message<V>[];
  /** Where the next `get` of this partition starts. */
  readonly nextOffset: number;
  /** Set when the broker answered that the offset is outside the log (retention, a reset): where it continues. */
  readonly movedTo?: number;
}

/**
 * One `get` of `topic` on `partition` from `offset`, decoded. At the end of the log it answers with no messages
 * at once: the broker does not long-poll the {@link BROWSER_GROUP}. A number as partition means that partition of the first broker holding the topic.
 *
 * Throws UnknownTopicError or WrongPartitionError when the broker has no such partition, PartitionClosedError,
 * MessageTooLargeError when a message does not fit even the broker's largest transfer, CorruptRecordError on a
 * checksum failure, and the link's retriable TimeoutError/ConnectionError.
 *
 * @example
 * ```ts
 * let offset = 0;
 * for (;;) {
 *   const r = await fetchOnce(ctx, 'orders', 0, offset);
 *   if (r.messages.length === 0 && r.movedTo === undefined) break;
 *   for (const m of r.messages) console.log(m.offset, m.payload.toString());
 *   offset = r.nextOffset;
 * }
 * ```
 */
export async function fetchOnce<V = Buffer>(ctx: ClientContext, topic: string, partition: Partition | number,
  offset: number, o: FetchOnceOptions<V> = {}): Promise<FetchOnceResult<V>> {
  if (ctx.closing) throw new ShuttingDownError('the client');
  const maxSize = o.maxSize ?? FETCH_ONCE_DEFAULT_MAX_SIZE;
  if (!Number.isInteger(maxSize) || maxSize <= 0) throw new InvalidArgumentError(`maxSize must be a positive integer, got ${maxSize}`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidArgumentError(`offset must be an integer >= 0, got ${offset}`);
  const p = typeof partition === 'number' ? await resolvePartition(ctx, topic, partition) : partition;
  const deserializer = o.deserializer ?? (Deserializers.buffer as unknown as Deserializer<V>);
  const timeoutMs = o.timeoutMs ?? ctx.options.requestTimeoutMs;

  let size = maxSize;
  for (let attempt = 0; ; attempt++) {
    const r = await get(ctx, topic, p, offset, size, timeoutMs);
    if (r.type === 'result') return resultOf(ctx, r, topic, p, offset);
    const decoded = await decodeMessages(r.body, {
      topic, partition: p, baseOffset: offset, deserializer, maxMessageSize: Math.max(size, CONSUMER_DEFAULTS.maxFetchSize),
    });
    const next = decoded.nextRecordSize;
    if (decoded.messages.length > 0 || next === undefined) {
      return { messages: decoded.messages, nextOffset: offset + decoded.bytesConsumed };
    }
    // The first record is larger than the window: ask once more for exactly its size. The broker caps a window at
    // its maxTransferSize, so a second cut means the record cannot be fetched at all.
    if (attempt > 0 || next <= size) throw new MessageTooLargeError(next, r.body.length);
    size = next;
  }
}

function get(ctx: ClientContext, topic: string, p: Partition, offset: number, maxSize: number, timeoutMs: number):
Promise<Response> {
  return ctx.router.link(p.brokerId, true).request(
    (opaque) => encodeGet({ topic, group: BROWSER_GROUP, partition: p.partition, offset, maxSize, opaque }), timeoutMs);
}

async function resultOf<V>(ctx: ClientContext, r: Response & { type: 'result' }, topic: string, p: Partition,
  offset: number): Promise<FetchOnceResult<V>> {
  const body = r.body.toString('utf8');
  switch (r.code) {
    case 404:
      if (body.endsWith('is not exists')) throw await missingPartitionError(ctx, topic, p);
      return { messages: [], nextOffset: offset };
    case 301: {
      const movedTo = replyOffset(301, r.body);
      return { messages: [], nextOffset: movedTo, movedTo };
    }
    case 403:
      throw new PartitionClosedError(topic, p.partition);
    case 400:
      throw new InvalidArgumentError(`the broker refused the get: ${body}`);
    default:
      throw new BrokerError(r.code, body);
  }
}

/** The broker says "not exists" for an unknown topic and for a partition out of range alike: tell them apart. */
async function missingPartitionError(ctx: ClientContext, topic: string, p: Partition): Promise<Error> {
  let partitions: readonly Partition[];
  try {
    partitions = await ctx.router.partitionsForSubscribe(topic);
  } catch (e) {
    return e instanceof UnknownTopicError ? e : new UnknownTopicError(topic);
  }
  const onBroker = partitions.filter((q) => q.brokerId === p.brokerId).length;
  return onBroker === 0 ? new UnknownTopicError(topic) : new WrongPartitionError(topic, p.partition, onBroker);
}

async function resolvePartition(ctx: ClientContext, topic: string, partition: number): Promise<Partition> {
  const partitions = await ctx.router.partitionsForSubscribe(topic);
  const first = partitions[0];
  if (first === undefined) throw new UnknownTopicError(topic);
  const onFirst = partitions.filter((q) => q.brokerId === first.brokerId);
  const p = onFirst.find((q) => q.partition === partition);
  if (p === undefined) throw new WrongPartitionError(topic, partition, onFirst.length);
  return p;
}

/**
 * The offset a broker reply carries as its body (a 301 of `get`, a 200 of `offset`). Throws BrokerError when the
 * body is not a non-negative integer.
 *
 * @example
 * ```ts
 * replyOffset(301, Buffer.from('1024')); // 1024
 * ```
 */
export function replyOffset(code: number, body: Buffer): number {
  const text = body.toString('latin1');
  const n = Number(text);
  if (text === '' || !Number.isSafeInteger(n) || n < 0) throw new BrokerError(code, `bad offset in a ${code} reply: ${text}`);
  return n;
}
