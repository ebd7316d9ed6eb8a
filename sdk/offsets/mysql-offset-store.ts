/**
 * Offsets in a MySQL or MariaDB table, MetaQ's MysqlOffsetStorage layout, through mysql2.
 *
 * Guarantees: a commit is one transaction (one multi-row `INSERT ... ON DUPLICATE KEY UPDATE` per 500 offsets), so
 * either all of its offsets are stored or none. 64-bit message ids round-trip exactly: they are sent as decimal
 * text and read back with `CAST(... AS CHAR)`, whatever the pool's `supportBigNumbers` setting.
 */
// Types only: mysql2 is loaded on first use, so importing the SDK does not pay for it (about 45 ms) unless needed.
import type { Pool, PoolOptions, RowDataPacket } from 'mysql2/promise';
import { ConfigError, ShuttingDownError, StorageError } from '../errors.js';
import { partitionName, type Partition } from '../message.js';
import { checkCommittedOffset } from './offset-file.js';
import type { CommittedOffset, OffsetStore } from './offset-store.js';

/**
 * MetaQ's table name (MysqlOffsetStorage.DEFAULT_TABLE_NAME).
 *
 * @example
 * ```ts
 * // Share the table MetaQ's Java consumers already use, in another schema than the pool's default.
 * const store = new MysqlOffsetStore({ pool, table: `metaq.${DEFAULT_OFFSET_TABLE}` });
 * ```
 */
export const DEFAULT_OFFSET_TABLE = 'meta_topic_partition_group_offset';

/**
 * Where the store connects: a pool you own (not closed by the store), or options (or a `mysql://` URI) for a pool
 * the store creates and closes.
 *
 * @example
 * ```ts
 * const shared = new MysqlOffsetStore({ pool });   // the app's pool: store.close() leaves it open
 * const own = new MysqlOffsetStore({ connection: 'mysql://app:secret@db.local:3306/metaq', table: 'offsets' });
 * ```
 */
export type MysqlOffsetStoreOptions = ({ readonly pool: Pool } | { readonly connection: PoolOptions | string }) & {
  /** Table name, optionally `schema.table`; default {@link DEFAULT_OFFSET_TABLE}. */
  readonly table?: string;
};

const ROWS_PER_STATEMENT = 500;

/** Errors that retrying cannot fix: wrong credentials, schema or privileges. */
const CONFIG_ERRORS = new Set(['ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR',
  'ER_TABLEACCESS_DENIED_ERROR', 'ER_BAD_FIELD_ERROR', 'ER_NOT_SUPPORTED_AUTH_MODE']);
/** Server errors that a later attempt may not meet. */
const TRANSIENT_SQL_ERRORS = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN', 'ER_QUERY_INTERRUPTED', 'ER_TOO_MANY_USER_CONNECTIONS']);

/**
 * The table's DDL. MetaQ ships none; this one matches the columns MetaQ's MysqlOffsetStorage reads and writes
 * (`topic`, `partition` as `"<brokerId>-<partition>"`, `group_id`, `offset`, `msg_id`), adds the unique key the
 * upsert needs, and compares names case-sensitively (`utf8mb4_bin`) as the broker does.
 *
 * @example
 * ```ts
 * await pool.query(offsetTableDdl('meta_topic_partition_group_offset'));
 * ```
 */
export function offsetTableDdl(table: string = DEFAULT_OFFSET_TABLE): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (
  \`id\` BIGINT NOT NULL AUTO_INCREMENT,
  \`topic\` VARCHAR(255) NOT NULL,
  \`partition\` VARCHAR(32) NOT NULL,
  \`group_id\` VARCHAR(255) NOT NULL,
  \`offset\` BIGINT NOT NULL,
  \`msg_id\` BIGINT NOT NULL DEFAULT -1,
  PRIMARY KEY (\`id\`),
  UNIQUE KEY \`uk_topic_partition_group\` (\`topic\`, \`partition\`, \`group_id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;
}

function quoteTable(table: string): string {
  if (!/^[A-Za-z0-9_$]{1,64}(\.[A-Za-z0-9_$]{1,64})?$/.test(table)) {
    throw new ConfigError(`offset table name ${JSON.stringify(table)} must be [schema.]table of letters, digits, _ or $`);
  }
  return table.split('.').map((part) => `\`${part}\``).join('.');
}

/**
 * An {@link OffsetStore} in a MySQL/MariaDB table, compatible with MetaQ's `MysqlOffsetStorage` (both can use the
 * same table). Call {@link MysqlOffsetStore.createTable} once to create the table if your schema has none.
 *
 * @example
 * ```ts
 * const store = new MysqlOffsetStore({ connection: 'mysql://app:secret@db.local:3306/metaq' });
 * await store.createTable();
 * const consumer = client.consumer({ group: 'billing', offsetStore: store });
 * // ... client.close() closes the consumer; then:
 * await store.close();
 * ```
 */
export class MysqlOffsetStore implements OffsetStore {
  /** The table name as given, and quoted for SQL. */
  private readonly tableName: string;
  private readonly table: string;
  private readonly ownPoolOptions: PoolOptions | undefined;
  private pool: Promise<Pool> | undefined;
  private closed = false;

  constructor(options: MysqlOffsetStoreOptions) {
    this.tableName = options.table ?? DEFAULT_OFFSET_TABLE;
    this.table = quoteTable(this.tableName);
    if ('pool' in options) {
      this.pool = Promise.resolve(options.pool);
    } else {
      this.ownPoolOptions = typeof options.connection === 'string' ? { uri: options.connection } : options.connection;
    }
  }

  /**
   * Creates the offsets table if it does not exist ({@link offsetTableDdl}).
   *
   * @example
   * ```ts
   * await new MysqlOffsetStore({ pool }).createTable();
   * ```
   */
  async createTable(): Promise<void> {
    this.checkOpen();
    const pool = await this.getPool();
    await this.run('create the offsets table', () => pool.query(offsetTableDdl(this.tableName)));
  }

  /**
   * The group's committed offset of a partition, or undefined. A row MetaQ's `initOffset` made has msgId -1n.
   *
   * @throws StorageError (retriable) when the database cannot be reached or the query fails.
   */
  async load(group: string, topic: string, partition: Partition): Promise<CommittedOffset | undefined> {
    this.checkOpen();
    const pool = await this.getPool();
    const [rows] = await this.run('load an offset', () => pool.query<RowDataPacket[]>(
      `SELECT CAST(\`offset\` AS CHAR) AS o, CAST(\`msg_id\` AS CHAR) AS m FROM ${this.table}` +
      ' WHERE `topic` = ? AND `partition` = ? AND `group_id` = ?', [topic, partitionName(partition), group]));
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      topic,
      partition: { brokerId: partition.brokerId, partition: partition.partition },
      offset: Number(row.o),
      msgId: BigInt(String(row.m)),
    };
  }

  /**
   * Upserts the offsets of the group in one transaction.
   *
   * @throws StorageError (retriable) when the transaction fails; nothing of it is then stored. InvalidArgumentError
   *   for a negative offset or an id outside int64.
   */
  async commit(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    this.checkOpen();
    if (offsets.length === 0) return;
    for (const o of offsets) checkCommittedOffset(o);
    const pool = await this.getPool();
    const conn = await this.run('connect', () => pool.getConnection());
    try {
      await this.run('commit offsets', async () => {
        await conn.beginTransaction();
        try {
          for (let i = 0; i < offsets.length; i += ROWS_PER_STATEMENT) {
            await conn.query(this.upsertSql(Math.min(ROWS_PER_STATEMENT, offsets.length - i)),
              upsertParams(group, offsets, i, ROWS_PER_STATEMENT));
          }
          await conn.commit();
        } catch (e) {
          await conn.rollback().catch(() => undefined);
          throw e;
        }
      });
    } finally {
      conn.release();
    }
  }

  /** Closes the pool if the store created it (a pool you passed stays open). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownPoolOptions !== undefined && this.pool !== undefined) await (await this.pool).end();
  }

  private getPool(): Promise<Pool> {
    if (this.pool === undefined) {
      const options = this.ownPoolOptions ?? {};
      this.pool = import('mysql2/promise').then((m) => m.createPool(options));
    }
    return this.pool;
  }

  private upsertSql(rows: number): string {
    // VALUES() works on MariaDB and MySQL (deprecated but accepted on 8.x; MariaDB lacks the `AS new` alias form).
    return `INSERT INTO ${this.table} (\`topic\`, \`partition\`, \`group_id\`, \`offset\`, \`msg_id\`) VALUES ` +
      Array.from({ length: rows }, () => '(?, ?, ?, ?, ?)').join(', ') +
      ' ON DUPLICATE KEY UPDATE `offset` = VALUES(`offset`), `msg_id` = VALUES(`msg_id`)';
  }

  private async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const message = `MySQL offset store: cannot ${what} (table ${this.tableName}): ${(e as Error).message}`;
      if (code === 'ER_NO_SUCH_TABLE') {
        throw new ConfigError(`${message}. Create it with store.createTable() or the DDL of offsetTableDdl()`);
      }
      if (typeof code === 'string' && CONFIG_ERRORS.has(code)) throw new ConfigError(message);
      // Server-side SQL errors other than lock conflicts will fail again; network and lock errors may not.
      const sqlError = typeof code === 'string' && code.startsWith('ER_') && !TRANSIENT_SQL_ERRORS.has(code);
      throw new StorageError(message, { cause: e, retriable: !sqlError });
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new ShuttingDownError(`the MySQL offset store (table ${this.table})`);
  }
}

function upsertParams(group: string, offsets: readonly CommittedOffset[], from: number, max: number): unknown[] {
  const params: unknown[] = [];
  const end = Math.min(offsets.length, from + max);
  for (let i = from; i < end; i++) {
    const o = offsets[i] as CommittedOffset;
    // Decimal text: exact for any int64, and the server converts it to BIGINT without going through a double.
    params.push(o.topic, partitionName(o.partition), group, o.offset, o.msgId.toString());
  }
  return params;
}
