import type { Response } from '../protocol/commands.js';
import type { ReplyHandler } from '../network/broker-connection.js';
import type { LinkState } from '../network/broker-link.js';
import type { Partition } from '../message.js';

/**
 * A way to send requests to one broker. {@link BrokerConnection} is one (a single socket); the reconnecting
 * {@link BrokerLink} is what clients use.
 */
export interface Link {
  /** `meta://host:port` */
  readonly url: string;
  /**
   * Sends `encode(opaque)` and resolves with the reply carrying that opaque. Rejects with a retriable
   * TimeoutError or ConnectionError when no reply comes.
   */
  request(encode: (opaque: number) => Buffer, timeoutMs?: number): Promise<Response>;
  /**
   * The callback form of `request` for hot paths: `handler(reply, error, token)` runs once, never synchronously.
   * `encode` runs inside the call while `isConnected`; otherwise once the link has connected, so it must then not
   * read anything a later call changes.
   */
  requestWith(encode: (opaque: number) => Buffer, handler: ReplyHandler, token: unknown, timeoutMs?: number): void;
  /** Sends a frame that gets no reply. */
  send(frame: Buffer): void;
  /** True while a connection is up. */
  readonly isConnected: boolean;
  /** Calls `fn(state, error)` on every state change; returns the unsubscribe function. */
  onStateChange(fn: (state: LinkState, error: Error | undefined) => void): () => void;
}

/**
 * Where topics live. The direct router (one `meta://` broker) and the ZooKeeper router (a cluster) both implement
 * it, so producers and consumers work the same way against either.
 */
export interface BrokerRouter {
  /**
   * The partitions a producer may send to, sorted by broker id then partition number. Throws UnknownTopicError
   * when no broker accepts the topic.
   */
  partitionsForPublish(topic: string): Promise<readonly Partition[]>;
  /** The partitions that hold the topic's messages, sorted as above. Throws UnknownTopicError. */
  partitionsForSubscribe(topic: string): Promise<readonly Partition[]>;
  /**
   * The link to the broker with this id. Throws ConnectionError (retriable) when the broker is not known. With
   * `forRead` (gets, offsets, stats), a broker whose master is gone is reached through an async slave if it has one.
   */
  link(brokerId: number, forRead?: boolean): Link;
  /** Ids and links of every known broker. */
  links(): ReadonlyMap<number, Link>;
  /** Closes every link. */
  close(): Promise<void>;
  /**
   * A number that moves whenever an answer of `partitionsForPublish` / `partitionsForSubscribe` may have changed
   * (the ZooKeeper router's watches fired), so callers holding a list know to ask again without asking on every
   * use. Undefined for a router that only learns of changes when asked (the direct router).
   */
  readonly topologyVersion?: number;
}
