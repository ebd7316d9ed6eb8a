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

export interface BinlogConfig {
  /** How to reach metaq: `serverUrl` or `zkConnect`, plus `recoverDir` / `offsetsFile` (SDK client options). */
  readonly client: Pick<ClientOptions, 'serverUrl' | 'zkConnect' | 'zkRoot' | 'recoverDir' | 'offsetsFile'>;
  readonly topic: string;
  readonly publish?: {
    readonly source: ConnectionOptions;
    readonly tables: Record<string, string[] | true>;
    /** Position file; relative paths are read from the config file's directory. */
    readonly positionFile: string;
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

/** Reads and checks a config file; paths inside are resolved against its directory. */
export async function loadBinlogConfig(file: string): Promise<BinlogConfig> {
  let c: BinlogConfig;
  try {
    c = JSON.parse(await readFile(file, 'utf8')) as BinlogConfig;
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the binlog config: ${(e as Error).message}`);
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
    need(typeof p.positionFile === 'string', file, '"publish.positionFile" is required');
    need(p.partitionBy === undefined || Object.values(PartitionModes).includes(p.partitionBy), file,
      `"publish.partitionBy" must be one of ${Object.values(PartitionModes).join(', ')}`);
    c = { ...c, publish: { ...p, positionFile: resolve(base, p.positionFile) } };
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
