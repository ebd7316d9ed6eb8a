/**
 * The producer's FIFO of sends that may not go out yet: they wait for the in-flight bound, for their topic's
 * partition list, for compression, or for an earlier send that waits for one of those (order is kept). A growable
 * ring, so a queue of a million sends costs no array shifting.
 */
import type { CompressionType } from '../codec/compression.js';
import type { ProducerRecord, SendResult } from '../message.js';
import type { TopicState } from './topic-cache.js';

/** One queued send. `ready` once its awaits are done (`data` and `flag` set, or `error`). */
export interface QueuedSend<V> {
  readonly topic: TopicState;
  readonly record: ProducerRecord<V>;
  readonly payload: Buffer;
  readonly compression: CompressionType;
  flag: number;
  data: Buffer | undefined;
  error: unknown;
  ready: boolean;
  readonly resolve: (r: SendResult) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * A FIFO ring of {@link QueuedSend}.
 *
 * @example
 * ```ts
 * const q = new SendQueue();
 * q.push(send);
 * q.peek() === send; // true
 * ```
 */
export class SendQueue<V> {
  private items: (QueuedSend<V> | undefined)[] = new Array<QueuedSend<V> | undefined>(16);
  private head = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(q: QueuedSend<V>): void {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) & (this.items.length - 1)] = q;
    this.size++;
  }

  peek(): QueuedSend<V> | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  shift(): QueuedSend<V> | undefined {
    if (this.size === 0) return undefined;
    const q = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.size--;
    return q;
  }

  private grow(): void {
    const next = new Array<QueuedSend<V> | undefined>(this.items.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = next;
    this.head = 0;
  }
}
