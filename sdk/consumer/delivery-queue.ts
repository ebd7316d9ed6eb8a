/**
 * The emitter of one subscription: it hands deliveries to the subscriber while fewer than `maxInFlight` are
 * unacknowledged, taking turns among the sources (partition fetchers, the recover store) that have one ready.
 *
 * Emission is a trampoline: a subscriber that acks synchronously inside `next()` makes its source ready again and
 * calls {@link DeliveryQueue.pump}, which returns at once because the outer loop is still running and picks the
 * source up on its next turn. The stack stays flat however many messages go by.
 */
import type { Delivery } from '../message.js';

/**
 * Something that has deliveries to hand out: a partition fetcher or the recover store's redeliveries.
 *
 * @example
 * ```ts
 * const source: DeliverySource = { queued: false, emitNext: () => queue.emit(next()) };
 * ```
 */
export interface DeliverySource {
  /** True while the source sits in the ready queue; only {@link DeliveryQueue} writes it. */
  queued: boolean;
  /** Hands out at most one delivery through {@link DeliveryQueue.emit}, and re-schedules itself if it has more. */
  emitNext(): void;
}

/**
 * Round-robin emitter bounded by the number of unacknowledged deliveries.
 *
 * @example
 * ```ts
 * const queue = new DeliveryQueue<Buffer>(1000, (d) => subscriber.next(d));
 * queue.schedule(fetcher); // fetcher.emitNext() will call queue.emit(delivery)
 * queue.pump();
 * ```
 */
export class DeliveryQueue<V> {
  /** Deliveries handed out and not settled (acked, nacked, or dropped with their partition). */
  inFlight = 0;
  /** Ready sources, a ring: `count` of them from `head` (no array shifting or resizing per message). */
  private ring: (DeliverySource | undefined)[] = new Array<DeliverySource | undefined>(16);
  private head = 0;
  private count = 0;
  private pumping = false;
  private closed = false;
  /** Callbacks of sources that wait for room before they fetch more. */
  private readonly roomWaiters = new Set<() => void>();

  constructor(readonly maxInFlight: number, private readonly sink: (delivery: Delivery<V>) => void) {}

  /** True while another delivery may be handed out. */
  get hasRoom(): boolean {
    return this.inFlight < this.maxInFlight;
  }

  /** Hands a delivery to the subscriber; only sources call it, from their `emitNext`. */
  emit(delivery: Delivery<V>): void {
    this.inFlight++;
    this.sink(delivery);
  }

  /** A delivery was settled (acked or nacked): room for one more. */
  settle(count = 1): void {
    this.inFlight -= count;
    if (this.roomWaiters.size > 0 && this.inFlight < this.maxInFlight) {
      const waiters = [...this.roomWaiters];
      this.roomWaiters.clear();
      for (const w of waiters) w();
    }
  }

  /** Runs `fn` once there is room (at once if there is); a second registration of the same fn is one. */
  whenRoom(fn: () => void): void {
    if (this.hasRoom) fn();
    else this.roomWaiters.add(fn);
  }

  /** Forgets a room waiter (its source stopped). */
  cancelRoom(fn: () => void): void {
    this.roomWaiters.delete(fn);
  }

  /** Puts a source at the back of the ready queue (no-op if it is already there). */
  schedule(source: DeliverySource): void {
    if (source.queued || this.closed) return;
    source.queued = true;
    if (this.count === this.ring.length) this.grow();
    this.ring[(this.head + this.count) % this.ring.length] = source;
    this.count++;
  }

  /** Emits while there is room and a ready source. Re-entrant calls return at once (the trampoline). */
  pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.inFlight < this.maxInFlight && this.count > 0 && !this.closed) {
        const source = this.ring[this.head]!;
        this.ring[this.head] = undefined;
        this.head = this.head + 1 === this.ring.length ? 0 : this.head + 1;
        this.count--;
        source.queued = false;
        source.emitNext();
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Stops emitting for good. */
  close(): void {
    this.closed = true;
    for (let i = 0; i < this.count; i++) this.ring[(this.head + i) % this.ring.length]!.queued = false;
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.roomWaiters.clear();
  }

  private grow(): void {
    const ring = new Array<DeliverySource | undefined>(this.ring.length * 2);
    for (let i = 0; i < this.count; i++) ring[i] = this.ring[(this.head + i) % this.ring.length];
    this.ring = ring;
    this.head = 0;
  }
}
