/**
 * The start-up check of a binlog source: what the publisher needs of the server, each missing item named with the
 * setting or grant that fixes it, so that a misconfigured source fails at once instead of publishing wrong rows.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { ConfigError } from '../../sdk/index.js';

/** Thrown by {@link checkBinlogServer} when the server lacks a setting or grant; `missing` lists each one. */
export class BinlogServerCheckError extends ConfigError {
  constructor(readonly missing: readonly string[]) {
    super(`the binlog source is not ready:\n  - ${missing.join('\n  - ')}`);
  }
}

export interface ServerFacts {
  readonly version: string;
  readonly isMariaDb: boolean;
}

/** Privileges granted on `*.*` and per schema, upper-case, from SHOW GRANTS. */
interface Grants {
  readonly global: Set<string>;
  readonly bySchema: Map<string, Set<string>>;
}

function parseGrants(lines: readonly string[]): Grants {
  const global = new Set<string>();
  const bySchema = new Map<string, Set<string>>();
  for (const line of lines) {
    const m = /^GRANT (.+?) ON (\S+) TO /i.exec(line);
    if (m === null) continue;
    const privs = m[1]!.split(',').map((p) => p.trim().toUpperCase());
    const scope = m[2]!.replace(/`/g, '');
    if (scope === '*.*') {
      for (const p of privs) global.add(p);
    } else if (scope.endsWith('.*')) {
      const schema = scope.slice(0, -2);
      const set = bySchema.get(schema) ?? new Set<string>();
      for (const p of privs) set.add(p);
      bySchema.set(schema, set);
    }
  }
  return { global, bySchema };
}

function hasAny(set: Set<string> | undefined, names: readonly string[]): boolean {
  if (set === undefined) return false;
  return set.has('ALL PRIVILEGES') || set.has('ALL') || names.some((n) => set.has(n));
}

async function variable(conn: Connection, name: string): Promise<string | undefined> {
  const [rows] = await conn.query<RowDataPacket[]>('SHOW GLOBAL VARIABLES LIKE ?', [name]);
  const v: unknown = rows[0]?.['Value'];
  return v === undefined || v === null ? undefined : String(v);
}

/** The server's version and kind, without checking anything (what the publisher needs when told not to check). */
export async function serverFacts(conn: Connection): Promise<ServerFacts> {
  const [v] = await conn.query<RowDataPacket[]>('SELECT VERSION() AS v');
  const version = String(v[0]?.['v'] ?? '');
  return { version, isMariaDb: /mariadb/i.test(version) };
}

/**
 * Checks binlog settings and the connected user's grants; resolves with the server's version, rejects with
 * {@link BinlogServerCheckError} naming everything that is missing.
 *
 * @example
 * ```ts
 * await checkBinlogServer(conn, ['shop']);   // BinlogServerCheckError: binlog_format is MIXED: set binlog_format=ROW ...
 * ```
 */
export async function checkBinlogServer(conn: Connection, schemas: readonly string[]): Promise<ServerFacts> {
  const facts = await serverFacts(conn);
  const { isMariaDb } = facts;
  const missing: string[] = [];
  const logBin = await variable(conn, 'log_bin');
  if (logBin?.toUpperCase() !== 'ON' && logBin !== '1') {
    missing.push(`the binary log is off: start the server with log_bin (${isMariaDb ? '--log-bin' : '--log-bin, the default on MySQL 8'})`);
  }
  const format = await variable(conn, 'binlog_format');
  if (format?.toUpperCase() !== 'ROW') missing.push(`binlog_format is ${format ?? 'unknown'}: set binlog_format=ROW`);
  const image = await variable(conn, 'binlog_row_image');
  if (image?.toUpperCase() !== 'FULL') {
    missing.push(`binlog_row_image is ${image ?? 'unknown'}: set binlog_row_image=FULL (otherwise absent columns look like NULLs)`);
  }
  const metadata = await variable(conn, 'binlog_row_metadata');
  if (metadata !== undefined && metadata.toUpperCase() !== 'FULL') {
    // Without it zongji names columns from the table's current definition, which is wrong for events written before
    // an ALTER TABLE (a replay after a restart), and it pauses the stream to query INFORMATION_SCHEMA.
    missing.push(`binlog_row_metadata is ${metadata}: set binlog_row_metadata=FULL (SET GLOBAL works)`);
  }
  const compression = await variable(conn, 'binlog_transaction_compression');
  if (compression?.toUpperCase() === 'ON') {
    missing.push('binlog_transaction_compression is ON: set it OFF (compressed transactions cannot be decoded)');
  }
  const [grantRows] = await conn.query<RowDataPacket[]>('SHOW GRANTS');
  const grants = parseGrants(grantRows.map((r) => String(Object.values(r)[0])));
  if (!hasAny(grants.global, ['REPLICATION SLAVE', 'REPLICATION REPLICA'])) {
    missing.push('grant REPLICATION SLAVE ON *.* (to read the binlog)');
  }
  if (!hasAny(grants.global, ['REPLICATION CLIENT', 'BINLOG MONITOR', 'SUPER'])) {
    missing.push(`grant ${isMariaDb ? 'BINLOG MONITOR (REPLICATION CLIENT)' : 'REPLICATION CLIENT'} ON *.* (SHOW BINARY LOGS)`);
  }
  for (const schema of schemas) {
    if (!hasAny(grants.global, ['SELECT']) && !hasAny(grants.bySchema.get(schema), ['SELECT'])) {
      missing.push(`grant SELECT ON \`${schema}\`.* (table metadata and primary keys)`);
    }
  }
  if (missing.length > 0) throw new BinlogServerCheckError(missing);
  return facts;
}
