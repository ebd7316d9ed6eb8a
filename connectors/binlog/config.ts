/**
 * The configuration file of `metaq binlog publish|sink -c <file>`: JSON, one file for both sides. README.md shows a
 * complete one.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ConnectionOptions } from 'mysql2';
import type { PoolOptions } from 'mysql2/promise';
import { ConfigError, type ClientOptions } from '../../sdk/index.js';
import { PartitionModes, type PartitionMode } from './partitioning.js';

export interface ZkPositionConfig {
  /** The publisher's name; the position is kept at `<zkRoot>/binlog/<name>/position`. */
  readonly name: string;
  /** Another znode for the position. */
  readonly path?: string;
  /** ZooKeeper to use; default `client.zkConnect`. */
  readonly connect?: string;
  /** Default 10 000 ms: a killed publisher's lock goes after that long. */
  readonly sessionTimeoutMs?: number;
}

export interface BinlogConfig {
  /** How to reach metaq: `serverUrl` or `zkConnect`, plus `recoverDir` / `offsetsFile` (SDK client options). */
  readonly client: Pick<ClientOptions, 'serverUrl' | 'zkConnect' | 'zkRoot' | 'recoverDir' | 'offsetsFile'>;
  readonly topic: string;
  readonly publish?: {
    readonly source: ConnectionOptions;
    readonly tables: Record<string, string[] | true>;
    /** Position file; relative paths are read from the config file's directory. Either this or `zkPosition`. */
    readonly positionFile?: string;
    /** The position in ZooKeeper, one live publisher per `name` (see ZkPositionStore). Either this or `positionFile`. */
    readonly zkPosition?: ZkPositionConfig;
    readonly partitionBy?: PartitionMode;
    readonly startFrom?: 'beginning' | 'end';
    readonly serverId?: number;
    readonly maxInFlight?: number;
  };
  readonly sink?: {
    readonly target: PoolOptions;
    readonly group: string;
    readonly schemaMap?: Record<string, string>;
    readonly ddlSchema?: string;
    readonly ddlTable?: string;
  };
}

function need(cond: boolean, file: string, what: string): void {
  if (!cond) throw new ConfigError(`${file}: ${what}`);
}

/** Command-line settings that win over the file's. */
export interface BinlogConfigOverrides {
  /** `--zk-position <name>`: keep the position in ZooKeeper under this name (instead of `positionFile`). */
  readonly zkPosition?: string;
  /** `--zk <connect>`: the ZooKeeper holding the position (`zkPosition.connect`; default `client.zkConnect`). */
  readonly zkConnect?: string;
}

/** Reads and checks a config file; paths inside are resolved against its directory. */
export async function loadBinlogConfig(file: string, overrides: BinlogConfigOverrides = {}): Promise<BinlogConfig> {
  let c: BinlogConfig;
  try {
    c = JSON.parse(await readFile(file, 'utf8')) as BinlogConfig;
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the binlog config: ${(e as Error).message}`);
  }
  if (overrides.zkPosition !== undefined && typeof c.publish === 'object' && c.publish !== null) {
    const { positionFile: _file, ...rest } = c.publish;
    c = { ...c, publish: { ...rest, zkPosition: { ...c.publish.zkPosition, name: overrides.zkPosition } } };
  }
  if (overrides.zkConnect !== undefined && c.publish?.zkPosition !== undefined) {
    c = { ...c, publish: { ...c.publish, zkPosition: { ...c.publish.zkPosition, connect: overrides.zkConnect } } };
  }
  need(typeof c.topic === 'string' && c.topic !== '', file, '"topic" is required');
  need(typeof c.client === 'object' && c.client !== null &&
    (typeof c.client.serverUrl === 'string' || typeof c.client.zkConnect === 'string'), file,
  '"client" needs "serverUrl" (meta://host:port) or "zkConnect"');
  const base = dirname(resolve(file));
  if (c.publish !== undefined) {
    const p = c.publish;
    need(typeof p.source === 'object' && p.source !== null, file, '"publish.source" (mysql2 connection options) is required');
    need(typeof p.tables === 'object' && p.tables !== null && Object.keys(p.tables).length > 0, file,
      '"publish.tables" needs at least one schema, e.g. { "shop": true }');
    need((typeof p.positionFile === 'string') !== (p.zkPosition !== undefined), file,
      '"publish" needs one of "positionFile" (a local file) or "zkPosition" ({ "name": ... } in ZooKeeper)');
    if (p.zkPosition !== undefined) {
      need(typeof p.zkPosition.name === 'string' && p.zkPosition.name !== '', file, '"publish.zkPosition.name" is required');
      need(typeof (p.zkPosition.connect ?? c.client.zkConnect) === 'string', file,
        '"publish.zkPosition" needs "connect" or "client.zkConnect"');
    }
    need(p.partitionBy === undefined || Object.values(PartitionModes).includes(p.partitionBy), file,
      `"publish.partitionBy" must be one of ${Object.values(PartitionModes).join(', ')}`);
    if (p.positionFile !== undefined) c = { ...c, publish: { ...p, positionFile: resolve(base, p.positionFile) } };
  }
  if (c.sink !== undefined) {
    need(typeof c.sink.target === 'object' && c.sink.target !== null, file, '"sink.target" (mysql2 pool options) is required');
    need(typeof c.sink.group === 'string' && c.sink.group !== '', file, '"sink.group" is required');
  }
  const client = { ...c.client };
  if (client.recoverDir !== undefined) client.recoverDir = resolve(base, client.recoverDir);
  if (client.offsetsFile !== undefined) client.offsetsFile = resolve(base, client.offsetsFile);
  return { ...c, client };
}
