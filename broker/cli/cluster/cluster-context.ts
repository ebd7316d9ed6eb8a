/**
 * Where the cluster commands find ZooKeeper (`--zk` / `--zk-root`, else `-c server.ini`'s `[zookeeper]`), the
 * session they read it with, and the broker connections they open. Everything is closed by
 * {@link ClusterContext.close}, so a command function can be called in-process (tests) as well as from `bin/metaq`.
 */
import pino from 'pino';
import { InvalidArgumentError } from '../../../sdk/errors.js';
import { ZkPaths } from '../../../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../../../sdk/protocol/zk/zk-session.js';
import { configFromFlags, type ConfigFlags } from '../cli-config.js';
import { BrokerDirectory } from './broker-directory.js';

/** The flags every cluster command takes. */
export interface ClusterFlags extends ConfigFlags {
  /** `host:port[,host:port...][/chroot]` */
  readonly zk?: string;
  readonly zkRoot?: string;
  /** How long to wait for the ZooKeeper session, ms. */
  readonly zkTimeout?: string;
  /** How long to wait for a broker's answer, ms. */
  readonly timeout?: string;
  readonly json?: boolean;
}

/** Where the commands write; tests capture it. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => { process.stdout.write(text); },
  err: (text) => { process.stderr.write(text); },
};

export interface ClusterContext {
  readonly zk: ZkSession;
  readonly paths: ZkPaths;
  /** The connect string, for messages. */
  readonly connect: string;
  readonly brokers: BrokerDirectory;
  close(): Promise<void>;
}

const DEFAULT_ROOT = '/meta';
const DEFAULT_ZK_TIMEOUT_MS = 10_000;
const DEFAULT_BROKER_TIMEOUT_MS = 3_000;

/** A positive integer flag, or InvalidArgumentError naming it. */
export function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} ${value}: expected a positive integer`);
  return n;
}

/** The connect string and root the flags name; InvalidArgumentError when there is no ZooKeeper to ask. */
export async function zkTarget(flags: ClusterFlags): Promise<{ connect: string; root: string }> {
  if (flags.zk !== undefined) {
    if (flags.zk.trim() === '') throw new InvalidArgumentError('--zk is empty: expected host:port[,host:port...][/chroot]');
    return { connect: flags.zk.trim(), root: flags.zkRoot ?? DEFAULT_ROOT };
  }
  if (flags.config === undefined) {
    throw new InvalidArgumentError('no ZooKeeper given: use --zk <host:port> (and --zk-root, default /meta) or -c server.ini with zk.zkConnect');
  }
  const { zookeeper } = await configFromFlags(flags);
  if (zookeeper.zkConnect === '') {
    throw new InvalidArgumentError(`${flags.config} has no zk.zkConnect in [zookeeper]: give --zk <host:port>`);
  }
  return { connect: zookeeper.zkConnect, root: flags.zkRoot ?? zookeeper.zkRoot };
}

/** Opens the ZooKeeper session the flags name. Rejects with a CoordinationError naming the connect string. */
export async function openCluster(flags: ClusterFlags): Promise<ClusterContext> {
  const { connect, root } = await zkTarget(flags);
  const zkTimeout = positiveInt(flags.zkTimeout, '--zk-timeout', DEFAULT_ZK_TIMEOUT_MS);
  const brokerTimeout = positiveInt(flags.timeout, '--timeout', DEFAULT_BROKER_TIMEOUT_MS);
  const zk = await ZkSession.open({
    connect,
    // A short session: a CLI that dies leaves nothing behind, and it holds no ephemerals anyway.
    sessionTimeoutMs: Math.max(4_000, zkTimeout),
    connectTimeoutMs: zkTimeout,
    operationTimeoutMs: zkTimeout,
    logger: pino({ level: process.env.METAQ_CLI_LOG_LEVEL ?? 'silent' }, pino.destination(2)),
  });
  const brokers = new BrokerDirectory(brokerTimeout);
  return {
    zk,
    paths: new ZkPaths(root),
    connect,
    brokers,
    close: async () => {
      brokers.close();
      await zk.close();
    },
  };
}

/** Runs `body` with an open cluster context and closes it afterwards. */
export async function withCluster<T>(flags: ClusterFlags, body: (ctx: ClusterContext) => Promise<T>): Promise<T> {
  const ctx = await openCluster(flags);
  try {
    return await body(ctx);
  } finally {
    await ctx.close();
  }
}
