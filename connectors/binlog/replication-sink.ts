/**
 * The replication sink: consumes a binlog topic and applies it to a target MySQL/MariaDB server.
 *
 * Guarantees:
 * - Idempotent: inserts and updates are upserts of the after image by primary key, deletes delete by primary key,
 *   so a change applied twice (the publisher re-publishes after a crash, the consumer redelivers after one) leaves the
 *   same row. A DDL statement is applied once: its dedupe key is recorded in a small table on the target, under a
 *   named lock, so the copy every partition carries runs only the first time.
 * - Ordered per partition (one message of a partition at a time) and never skips: a change that fails is retried
 *   until it succeeds or the sink stops (then it is redelivered at the next start). A poison change stops its partition
 *   rather than being dropped: the log says which.
 * - Not transactional: the rows of one source transaction are applied one by one (each partition on its own).
 */
import { createPool, type Pool, type PoolConnection, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { ListenerSubscription, Message, MetaqClient, OffsetStore } from '../../sdk/index.js';
import { parseEnvelope, type ChangeEnvelope, type JsonValue, type RowImage } from './envelope.js';

export interface ReplicationSinkOptions {
  readonly client: MetaqClient;
  readonly topic: string;
  /** The consumer group (its offsets say what was applied). */
  readonly group: string;
  /** The target server (mysql2 pool options). */
  readonly target: PoolOptions;
  /** Source schema → target schema; default the same name. */
  readonly schemaMap?: Readonly<Record<string, string>>;
  /** Schema of the applied-DDL table; default `target.database`, required when that is unset. */
  readonly ddlSchema?: string;
  /** Default `metaq_binlog_ddl`. */
  readonly ddlTable?: string;
  readonly offsetStore?: OffsetStore;
  /** Delay between attempts at a failing change; default 500 ms. */
  readonly retryDelayMs?: number;
  readonly logger: Logger;
}

export interface ReplicationSinkStats {
  rowsApplied: number;
  ddlApplied: number;
  /** DDL copies found applied already. */
  ddlSkipped: number;
  retries: number;
}

/** Errors a DDL statement gives when it ran before (the sink crashed between running it and recording it). */
const ALREADY_APPLIED = new Set([1050 /* table exists */, 1051 /* unknown table */, 1060 /* dup column */,
  1061 /* dup key */, 1091 /* can't drop */, 1007 /* db exists */, 1008 /* db missing */]);
const ER_BAD_FIELD = 1054;

function id(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/**
 * @example
 * ```ts
 * const sink = new ReplicationSink({ client, topic: 'shop-changes', group: 'replica-1',
 *   target: { host, port, user, password, database: 'shop' }, logger });
 * await sink.start();
 * ```
 */
export class ReplicationSink {
  readonly stats: ReplicationSinkStats = { rowsApplied: 0, ddlApplied: 0, ddlSkipped: 0, retries: 0 };
  private readonly pool: Pool;
  private readonly log: Logger;
  private readonly ddlTable: string;
  private subscription: ListenerSubscription | undefined;
  private stopped = false;
  /** Target columns of tables whose rows named a column the target lacks (an older image than the table). */
  private readonly columns = new Map<string, Set<string>>();

  constructor(private readonly options: ReplicationSinkOptions) {
    this.log = options.logger.child({ component: 'replication-sink', topic: options.topic, group: options.group });
    const schema = options.ddlSchema ?? options.target.database;
    if (schema === undefined) throw new Error('ReplicationSink needs ddlSchema or target.database for its DDL table');
    this.ddlTable = `${id(schema)}.${id(options.ddlTable ?? 'metaq_binlog_ddl')}`;
    this.pool = createPool({ connectionLimit: 8, ...options.target, supportBigNumbers: true, bigNumberStrings: true });
  }

  async start(): Promise<void> {
    await this.pool.query(`CREATE TABLE IF NOT EXISTS ${this.ddlTable} (dedupe_key VARCHAR(255) NOT NULL PRIMARY KEY, ` +
      'statement LONGTEXT NOT NULL, applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))');
    const consumer = this.options.client.consumer({ group: this.options.group,
      ...(this.options.offsetStore === undefined ? {} : { offsetStore: this.options.offsetStore }) });
    this.subscription = consumer.subscribe(this.options.topic, (m: Message) => this.handle(m));
  }

  /** Stops consuming (offsets of applied changes are committed) and closes the target pool. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.subscription?.close();
    await this.pool.end();
  }

  private async handle(m: Message): Promise<void> {
    const env = parseEnvelope(m.payload);
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) throw new Error('the replication sink stopped');
      try {
        await this.apply(env);
        return;
      } catch (e) {
        this.stats.retries++;
        this.log.warn({ err: e, dedupeKey: env.dedupeKey, attempt, partition: m.partition, offset: m.offset },
          'applying a change failed; retrying');
        await new Promise((r) => setTimeout(r, this.options.retryDelayMs ?? 500));
      }
    }
  }

  /** Applies one change; exported through the class for tests and other drivers (e.g. a batch replay). */
  async apply(env: ChangeEnvelope): Promise<void> {
    const schema = this.options.schemaMap?.[env.schema] ?? env.schema;
    if (env.type === 'ddl') return this.applyDdl(schema, env);
    if (env.table === null) return;
    const table = `${id(schema)}.${id(env.table)}`;
    try {
      await this.applyRow(table, env);
    } catch (e) {
      if ((e as { errno?: number }).errno !== ER_BAD_FIELD) throw e;
      // The image has a column the target no longer has (a change published before a DROP COLUMN, replayed).
      await this.loadColumns(schema, env.table, table);
      await this.applyRow(table, env);
    }
    this.stats.rowsApplied++;
  }

  private async applyRow(table: string, env: ChangeEnvelope): Promise<void> {
    const binary = new Set(env.base64Columns ?? []);
    const known = this.columns.get(table);
    const pk = env.primaryKeyColumns;
    const before = env.before === null ? null : this.values(env.before, binary, known);
    const after = env.after === null ? null : this.values(env.after, binary, known);
    if (after !== null && before !== null && pk.length > 0 && pk.some((c) => !sameValue(env.before![c], env.after![c]))) {
      await this.delete(table, before, pk);
    }
    if (after !== null) return this.upsert(table, after, pk);
    if (before !== null) return this.delete(table, before, pk);
  }

  private values(image: RowImage, binary: Set<string>, known: Set<string> | undefined): Map<string, unknown> {
    const out = new Map<string, unknown>();
    for (const [c, v] of Object.entries(image)) {
      if (known !== undefined && !known.has(c)) continue;
      out.set(c, toSqlValue(v, binary.has(c)));
    }
    return out;
  }

  private async upsert(table: string, row: Map<string, unknown>, pk: readonly string[]): Promise<void> {
    const cols = [...row.keys()];
    const update = cols.filter((c) => !pk.includes(c)).map((c) => `${id(c)} = VALUES(${id(c)})`);
    const sql = `INSERT INTO ${table} (${cols.map(id).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})` +
      (pk.length === 0 ? '' : ` ON DUPLICATE KEY UPDATE ${update.length > 0 ? update.join(', ') : `${id(pk[0]!)} = ${id(pk[0]!)}`}`);
    await this.pool.query(sql, [...row.values()]);
  }

  private async delete(table: string, row: Map<string, unknown>, pk: readonly string[]): Promise<void> {
    const cols = pk.length > 0 ? pk.filter((c) => row.has(c)) : [...row.keys()];
    const where = cols.map((c) => (row.get(c) === null ? `${id(c)} IS NULL` : `${id(c)} = ?`)).join(' AND ');
    const params = cols.map((c) => row.get(c)).filter((v) => v !== null);
    await this.pool.query(`DELETE FROM ${table} WHERE ${where}${pk.length > 0 ? '' : ' LIMIT 1'}`, params);
  }

  private async loadColumns(schema: string, tableName: string, table: string): Promise<void> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, tableName]);
    this.columns.set(table, new Set(rows.map((r) => String(r['c']))));
  }

  private async applyDdl(schema: string, env: ChangeEnvelope): Promise<void> {
    const conn: PoolConnection = await this.pool.getConnection();
    const lock = `metaq-ddl:${this.ddlTable}`;
    try {
      const [got] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 60) AS ok', [lock]);
      if (Number(got[0]?.['ok']) !== 1) throw new Error(`could not take the DDL lock ${lock} within 60 s`);
      try {
        const [done] = await conn.query<RowDataPacket[]>(`SELECT 1 FROM ${this.ddlTable} WHERE dedupe_key = ?`, [env.dedupeKey]);
        if (done.length > 0) {
          this.stats.ddlSkipped++;
          return;
        }
        await conn.query(`USE ${id(schema)}`);
        try {
          await conn.query(env.ddl ?? '');
        } catch (e) {
          if (!ALREADY_APPLIED.has((e as { errno?: number }).errno ?? 0)) throw e;
          this.log.warn({ err: e, dedupeKey: env.dedupeKey }, 'DDL had been applied before it was recorded');
        }
        await conn.query<ResultSetHeader>(`INSERT INTO ${this.ddlTable} (dedupe_key, statement) VALUES (?, ?)`,
          [env.dedupeKey, env.ddl ?? '']);
        this.columns.clear();
        this.stats.ddlApplied++;
        this.log.info({ dedupeKey: env.dedupeKey, schema, ddl: env.ddl }, 'DDL applied');
      } finally {
        await conn.query('SELECT RELEASE_LOCK(?)', [lock]);
      }
    } finally {
      conn.release();
    }
  }
}

function sameValue(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function toSqlValue(v: JsonValue, base64: boolean): unknown {
  if (v === null) return null;
  if (base64 && typeof v === 'string') return Buffer.from(v, 'base64');
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}
