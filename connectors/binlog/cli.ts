/**
 * `metaq binlog publish -c <config.json>` and `metaq binlog sink -c <config.json>`: run the publisher or the
 * replication sink until SIGINT/SIGTERM. Exit status 0 after a signal, 1 when it failed (restart it: the publisher
 * resumes at its saved position, the sink at its group's offsets), 2 on a usage or configuration error.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import { createClient, ZkSession } from '../../sdk/index.js';
import { BinlogPublisher } from './binlog-publisher.js';
import { loadBinlogConfig, type BinlogConfig, type BinlogConfigOverrides } from './config.js';
import { FilePositionStore, type PositionStore } from './position-store.js';
import { ReplicationSink } from './replication-sink.js';
import { ZkPositionStore } from './zk-position-store.js';

const USAGE = 'usage: metaq binlog publish|sink -c <config.json> [--zk-position <name>] [--zk <connect>] [--log-level info]';

interface Args {
  readonly command: string;
  readonly config: string;
  readonly logLevel: string;
  readonly overrides: BinlogConfigOverrides;
}

function parseArgs(args: readonly string[]): Args | string {
  const [command, ...rest] = args;
  if (command !== 'publish' && command !== 'sink') return USAGE;
  let config: string | undefined;
  let logLevel = process.env.METAQ_LOG_LEVEL ?? 'info';
  const overrides: { zkPosition?: string; zkConnect?: string } = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    const v = rest[i + 1];
    if ((a === '-c' || a === '--config') && v !== undefined) config = v;
    else if (a === '--log-level' && v !== undefined) logLevel = v;
    else if (a === '--zk-position' && v !== undefined) overrides.zkPosition = v;
    else if (a === '--zk' && v !== undefined) overrides.zkConnect = v;
    else return `unknown argument ${a}\n${USAGE}`;
    i++;
  }
  return config === undefined ? USAGE : { command, config, logLevel, overrides };
}

/** The position store of the config, and the ZooKeeper session it needs (closed by the caller). */
async function positionStore(config: BinlogConfig, logger: Logger): Promise<{ store: PositionStore; session?: ZkSession }> {
  const p = config.publish!;
  if (p.zkPosition === undefined) return { store: new FilePositionStore(p.positionFile!) };
  const z = p.zkPosition;
  const timeout = z.sessionTimeoutMs ?? 10_000;
  const session = await ZkSession.open({ connect: (z.connect ?? config.client.zkConnect)!, sessionTimeoutMs: timeout,
    connectTimeoutMs: timeout, logger: logger.child({ component: 'binlog-zk' }) });
  const store = new ZkPositionStore({ session, name: z.name, ...(config.client.zkRoot === undefined ? {} : { zkRoot: config.client.zkRoot }),
    ...(z.path === undefined ? {} : { path: z.path }) });
  return { store, session };
}

/** Runs the binlog command of `argv` (`node metaq.js binlog ...`); resolves with the exit status. */
export async function runBinlogCli(argv: readonly string[]): Promise<number> {
  const parsed = parseArgs(argv.slice(3));
  if (typeof parsed === 'string') {
    process.stderr.write(parsed + '\n');
    return 2;
  }
  const logger = pino({ level: parsed.logLevel }, pino.destination(2));
  let config;
  try {
    config = await loadBinlogConfig(parsed.config, parsed.overrides);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  const client = await createClient({ ...config.client, logger });
  let stop: () => Promise<void>;
  let done: Promise<void>;
  let session: ZkSession | undefined;
  try {
    if (parsed.command === 'publish') {
      if (config.publish === undefined) throw new Error(`${parsed.config} has no "publish" section`);
      const p = config.publish;
      const position = await positionStore(config, logger);
      session = position.session;
      const publisher = new BinlogPublisher({ client, topic: config.topic, source: p.source, tables: p.tables,
        positionStore: position.store, logger,
        ...(p.partitionBy === undefined ? {} : { partitionBy: p.partitionBy }),
        ...(p.startFrom === undefined ? {} : { startFrom: p.startFrom }),
        ...(p.serverId === undefined ? {} : { serverId: p.serverId }),
        ...(p.maxInFlight === undefined ? {} : { maxInFlight: p.maxInFlight }) });
      await publisher.start();
      stop = () => publisher.stop();
      done = publisher.done;
    } else {
      if (config.sink === undefined) throw new Error(`${parsed.config} has no "sink" section`);
      const s = config.sink;
      const sink = new ReplicationSink({ client, topic: config.topic, group: s.group, target: s.target, logger,
        ...(s.schemaMap === undefined ? {} : { schemaMap: s.schemaMap }),
        ...(s.ddlSchema === undefined ? {} : { ddlSchema: s.ddlSchema }),
        ...(s.ddlTable === undefined ? {} : { ddlTable: s.ddlTable }) });
      await sink.start();
      stop = () => sink.stop();
      done = new Promise(() => undefined);
    }
  } catch (e) {
    logger.error({ err: e }, `binlog ${parsed.command} could not start`);
    await session?.close();
    await client.close();
    return 1;
  }
  logger.info({ topic: config.topic }, `binlog ${parsed.command} running`);
  const signalled = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  let status = 0;
  try {
    await Promise.race([done, signalled]);
  } catch (e) {
    logger.error({ err: e }, `binlog ${parsed.command} failed`);
    status = 1;
  }
  await stop();
  await session?.close();
  await client.close();
  return status;
}
