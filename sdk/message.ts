/**
 * The message shapes every part of the SDK shares: what a producer sends, what it gets back, and what a consumer
 * delivers. Partitions are named as in MetaQ, `"<brokerId>-<partition>"`.
 */
import type { CompressionType } from './codec/compression.js';

/**
 * A partition of a topic on one broker.
 *
 * @example
 * ```ts
 * const p: Partition = { brokerId: 0, partition: 2 };
 * await producer.send({ topic: 'orders', value: 'hi', partition: p });   // bypasses the partitioner
 * partitionName(p); // '0-2'
 * ```
 */
export interface Partition {
  readonly brokerId: number;
  readonly partition: number;
}

/**
 * MetaQ's name of a partition, `"<brokerId>-<partition>"`.
 *
 * @example
 * ```ts
 * partitionName({ brokerId: 0, partition: 3 }); // '0-3'
 * ```
 */
export function partitionName(p: Partition): string {
  return `${p.brokerId}-${p.partition}`;
}

/**
 * Parses `"<brokerId>-<partition>"`; undefined when the text is not of that form.
 *
 * @example
 * ```ts
 * parsePartitionName('0-3'); // { brokerId: 0, partition: 3 }
 * ```
 */
export { parsePartitionName } from './protocol/zk/zk-layout.js';

/**
 * What a producer sends. `value` goes through the producer's serializer; `key` only chooses the partition (with the
 * `hash` selector), it is not stored; `attribute` is MetaQ's optional string stored beside the payload.
 *
 * @example
 * ```ts
 * const record: ProducerRecord = { topic: 'orders', value: Buffer.from('hello'), key: 'customer-42' };
 * ```
 */
export interface ProducerRecord<V = Buffer | string> {
  readonly topic: string;
  readonly value: V;
  /** Chooses the partition with the `hash` selector: equal keys go to the same partition, in order. */
  readonly key?: string | Buffer;
  /** MetaQ's message attribute: a short string stored with the message (filters often read it). */
  readonly attribute?: string;
  /** Sends to this partition instead of asking the selector (a number means a partition of the first broker). */
  readonly partition?: Partition | number;
  /** Overrides the producer's compression for this message. */
  readonly compression?: CompressionType;
}

/**
 * The broker's answer to a send: the message id it assigned and where the message now lives.
 *
 * @example
 * ```ts
 * const r: SendResult = await producer.send({ topic: 'orders', value: 'hi' });
 * console.log(r.id, partitionName(r.partition), r.offset);
 * ```
 */
export interface SendResult {
  readonly topic: string;
  /** The 64-bit message id. */
  readonly id: bigint;
  readonly partition: Partition;
  /** Log offset of the message's first byte in its partition. */
  readonly offset: number;
}

/**
 * A message as a consumer sees it.
 *
 * @example
 * ```ts
 * consumer.subscribe('orders', (m: Message) => console.log(m.topic, m.offset, m.value.toString()));
 * ```
 */
export interface Message<V = Buffer> {
  readonly topic: string;
  readonly partition: Partition;
  /** Log offset of the record's first byte. */
  readonly offset: number;
  /** Log offset just after the record: what is committed once this message and all before it are acked. */
  readonly nextOffset: number;
  /** The 64-bit message id the broker assigned. */
  readonly id: bigint;
  readonly attribute: string | null;
  /** The record's flag word (MetaQ bit 0: has attribute; our compression bits; see codec/compression.ts). */
  readonly flag: number;
  /** The payload bytes, decompressed. */
  readonly payload: Buffer;
  /** The payload through the consumer's deserializer. */
  readonly value: V;
  /** How many times this message was delivered before (0 on the first delivery). */
  readonly redeliveries: number;
}

/**
 * One message handed to an Observable consumer, with its acknowledgement. The offset of a partition is committed
 * only up to the first message not yet acked, so a crash redelivers and never skips.
 *
 * @example
 * ```ts
 * consumer.messages$('orders').pipe(concatMap(async (d: Delivery) => { await handle(d.message); d.ack(); }));
 * ```
 */
export interface Delivery<V = Buffer> {
  readonly message: Message<V>;
  /** Marks the message processed. Calling it again, or after nack, does nothing. */
  ack(): void;
  /**
   * Marks the processing as failed: the message is delivered again in line (the partition waits) up to
   * `maxFetchRetries` times, then moves to the local recover store and the partition goes on.
   */
  nack(error?: unknown): void;
}
