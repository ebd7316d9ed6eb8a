import type { Logger } from 'pino';
import type { BrokerRouter } from '../cluster/broker-router.js';
import type { ZkPaths } from '../protocol/zk/zk-layout.js';
import type { ZkSession } from '../protocol/zk/zk-session.js';

/** Something the client closes when it closes. */
export interface Closeable {
  close(): Promise<void>;
}

/** The client's options with every default filled in. */
export interface ResolvedClientOptions {
  readonly requestTimeoutMs: number;
  readonly recoverDir: string;
  readonly offsetsFile: string;
}

/** A client in cluster mode: its ZooKeeper session and the cluster's paths. */
export interface ClusterContext {
  readonly zk: ZkSession;
  readonly paths: ZkPaths;
}

/**
 * What producers and consumers get from the client that made them: where topics live, the logger, the resolved
 * options, and a registry of resources to close with the client.
 */
export interface ClientContext {
  readonly router: BrokerRouter;
  /** Set in cluster mode (`zkConnect`); undefined for a direct connection. */
  readonly cluster?: ClusterContext | undefined;
  readonly logger: Logger;
  readonly options: ResolvedClientOptions;
  /** True once `client.close()` started: new work must fail with ShuttingDownError. */
  readonly closing: boolean;
  /**
   * Registers a resource that `client.close()` closes (newest first, before the links). Returns a function that
   * unregisters it (call it when the resource was closed by its owner).
   */
  own(resource: Closeable): () => void;
}
