/**
 * The binlog publisher: reads row events of the configured tables with zongji and sends one message per row change
 * (and per DDL statement) to a topic, in binlog order.
 *
 * Guarantees:
 * - Never skips: the resume position of a transaction is saved only after the broker acknowledged every message of it
 *   and of every transaction before it. A crash resumes there and publishes again (at least once); a message published
 *   twice carries the same `dedupeKey`.
 * - Order: messages are sent in binlog order over one producer; the partition key keeps a row's changes (or a
 *   table's, or all) in one partition, so they are in binlog order in the broker.
 * - Bounded: at most `maxInFlight` messages await their acknowledgement; beyond that the binlog connection is paused.
 */
import ZongJi, {
  type AnyBinlogEvent, type DeleteRowsEvent, type QueryEvent, type UpdateRowsEvent, type WriteRowsEvent,
} from '@vlasky/zongji';
import type { ConnectionOptions } from 'mysql2';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { MetaqClient, Producer } from '../../sdk/index.js';
import {
  ChangeTypes, ENVELOPE_VERSION, primaryKeyOf, toRowImage, type ChangeEnvelope, type ChangeType, type RowImage,
} from './envelope.js';
import { binlogPartitioner, indexKey, PartitionModes, rowKey, type PartitionMode } from './partitioning.js';
import type { BinlogPosition, PositionStore } from './position-store.js';
import { checkBinlogServer, serverFacts } from './server-check.js';
import { positionAfter, TransactionTracker, type Snapshot, type Trx } from './transaction-tracker.js';

export interface BinlogPublisherOptions {
  readonly client: MetaqClient;
  readonly topic: string;
  /** The source server (mysql2 options: host, port, user, password...). */
  readonly source: ConnectionOptions;
  /** Tables to publish: `{ shop: true }` for all of schema `shop`, `{ shop: ['orders'] }` for some. */
  readonly tables: Readonly<Record<string, readonly string[] | true>>;
  readonly positionStore: PositionStore;
  /** Default `'primary-key'`. */
  readonly partitionBy?: PartitionMode;
  /** Where the first start (no saved position) begins: the oldest binlog kept (default) or its end. */
  readonly startFrom?: 'beginning' | 'end';
  /** The replica server id this reader announces; unique among the source's replicas. Default 4242. */
  readonly serverId?: number;
  /** Messages awaiting their acknowledgement before reading pauses; default 1000. */
  readonly maxInFlight?: number;
  /** Check binlog settings and grants at start (default true). */
  readonly checkServer?: boolean;
  readonly logger: Logger;
}

export interface BinlogPublisherStats {
  /** Messages acknowledged by the broker. */
  acked: number;
  /** Messages sent (acknowledged or not). */
  sent: number;
  transactions: number;
  /** Positions saved. */
  checkpoints: number;
  /** Times the binlog connection was paused because too much was in flight. */
  pauses: number;
  /** Messages sent beyond the saved position: what a crash now would publish again. */
  unsaved: number;
}

interface Queued {
  readonly e: AnyBinlogEvent;
  readonly at: Snapshot | undefined;
}

const SNAPSHOT_EVENTS = new Set(['xid', 'query', 'gtid', 'mariadbgtid', 'anonymousgtid']);
const COMMIT_RE = /^(COMMIT|ROLLBACK|XA COMMIT|XA ROLLBACK)\b/i;
const BEGIN_RE = /^(BEGIN|START TRANSACTION|XA START|XA END|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO)\b/i;

/**
 * @example
 * ```ts
 * const publisher = new BinlogPublisher({ client, topic: 'shop-changes', source: { host, port, user, password },
 *   tables: { shop: true }, positionStore: new FilePositionStore('shop.pos.json'), logger });
 * await publisher.start();
 * await publisher.done;   // rejects when publishing failed (restart it: it resumes at the saved position)
 * ```
 */
export class BinlogPublisher {
  readonly stats: BinlogPublisherStats = { acked: 0, sent: 0, transactions: 0, checkpoints: 0, pauses: 0, unsaved: 0 };
  /** Resolves after `stop()`, rejects with the first fatal error (the publisher then stopped itself). */
  readonly done: Promise<void>;
  /** The last position saved (what a restart resumes from). */
  savedPosition: BinlogPosition | undefined;
  private resolveDone!: () => void;
  private rejectDone!: (e: Error) => void;
  private readonly log: Logger;
  private readonly mode: PartitionMode;
  private readonly maxInFlight: number;
  private readonly partitionCounts = new Map<string, number>();
  private readonly producer: Producer<string>;
  private zj: ZongJi | undefined;
  private ctrl: Connection | undefined;
  private isMariaDb = false;
  private readonly queue: Queued[] = [];
  private qHead = 0;
  private wake: (() => void) | undefined;
  private permit: (() => void) | undefined;
  private paused = false;
  private inFlight = 0;
  private readonly tracker: TransactionTracker;
  private cur: Trx | undefined;
  private readonly pkCache = new Map<string, readonly string[]>();
  private stopping = false;
  private worker: Promise<void> | undefined;
  private lastEnd: Snapshot | undefined;

  constructor(private readonly options: BinlogPublisherOptions) {
    this.log = options.logger.child({ component: 'binlog-publisher', topic: options.topic });
    this.mode = options.partitionBy ?? PartitionModes.primaryKey;
    if (!Object.values(PartitionModes).includes(this.mode)) throw new Error(`unknown partitionBy ${String(this.mode)}`);
    this.maxInFlight = options.maxInFlight ?? 1000;
    this.producer = options.client.producer<string>({
      partitioner: binlogPartitioner(this.partitionCounts), maxInFlight: this.maxInFlight,
    });
    this.tracker = new TransactionTracker(options.positionStore, this.stats, (p) => {
      this.savedPosition = p;
      this.permit?.();
    }, (e) => this.fail(e));
    this.done = new Promise((resolve, reject) => { this.resolveDone = resolve; this.rejectDone = reject; });
    // A failure is reported through `done`; nobody may be listening yet.
    this.done.catch(() => undefined);
  }

  /** Checks the server, loads the saved position and starts reading; resolves once zongji is streaming. */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (e) {
      this.stopping = true;
      this.zj?.stop();
      await this.ctrl?.end().catch(() => undefined);
      await this.options.positionStore.close?.().catch(() => undefined);
      await this.producer.close().catch(() => undefined);
      this.rejectDone(e as Error);
      throw e;
    }
  }

  private async open(): Promise<void> {
    const o = this.options;
    this.ctrl = await createConnection({ ...o.source, dateStrings: true } as ConnectionOptions);
    const facts = o.checkServer !== false ? await checkBinlogServer(this.ctrl, Object.keys(o.tables))
      : await serverFacts(this.ctrl);
    this.isMariaDb = facts.isMariaDb;
    const saved = await o.positionStore.load();
    this.savedPosition = saved;
    const from = saved?.gtidSet !== undefined ? { gtidSet: saved.gtidSet }
      : saved?.file !== undefined ? { filename: saved.file, position: saved.position ?? 4 }
        : o.startFrom === 'end' ? { startAtEnd: true } : { gtidSet: '' };
    this.log.info({ from, saved }, 'binlog publisher starting');
    const zj = new ZongJi({ ...o.source, dateStrings: true, supportBigNumbers: true, bigNumberStrings: false } as ConnectionOptions);
    this.zj = zj;
    const includeSchema: Record<string, string[] | true> = {};
    for (const [s, t] of Object.entries(o.tables)) includeSchema[s] = t === true ? true : [...t];
    await new Promise<void>((resolve, reject) => {
      zj.once('ready', resolve);
      zj.once('error', reject);
      zj.on('binlog', this.onBinlog);
      zj.start({ serverId: o.serverId ?? 4242, includeSchema, ...from });
    });
    zj.on('error', (e: Error) => this.fail(e));
    this.worker = this.run().catch((e: unknown) => this.fail(e as Error));
  }

  /** Stops reading, waits for the answers of what was sent, saves the last position; idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return this.done.catch(() => undefined);
    this.stopping = true;
    this.zj?.stop();
    this.wake?.();
    this.permit?.();
    await this.worker;
    await this.producer.close();
    await this.tracker.flush();
    await this.options.positionStore.close?.();
    await this.ctrl?.end().catch(() => undefined);
    this.resolveDone();
    this.log.info({ stats: this.stats, saved: this.savedPosition }, 'binlog publisher stopped');
  }

  private fail(e: Error): void {
    if (this.stopping) return;
    this.log.error({ err: e }, 'binlog publisher failed');
    this.rejectDone(e);
    void this.stop();
  }

  private readonly onBinlog = (e: AnyBinlogEvent): void => {
    const zj = this.zj!;
    const at = SNAPSHOT_EVENTS.has(e.getEventName())
      ? { gtidSet: zj.gtidSet, file: zj.options.filename, position: zj.options.position } : undefined;
    this.queue.push({ e, at });
    // Called on every event while over the bound: zongji resumes the connection itself after a metadata query.
    if (this.queue.length - this.qHead >= this.maxInFlight && zj.connection !== null) {
      if (!this.paused) this.stats.pauses++;
      this.paused = true;
      zj.connection.pause();
    }
    this.wake?.();
  };

  private async run(): Promise<void> {
    while (!this.stopping) {
      if (this.qHead === this.queue.length) {
        this.queue.length = 0;
        this.qHead = 0;
        await new Promise<void>((r) => { this.wake = r; });
        this.wake = undefined;
        continue;
      }
      const item = this.queue[this.qHead]!;
      this.queue[this.qHead++] = undefined as unknown as Queued;
      await this.handle(item);
      this.maybeResume();
    }
  }

  /** Called after each event and each acknowledgement: the queue may drain while the acks are still due. */
  private maybeResume(): void {
    if (this.paused && this.queue.length - this.qHead <= this.maxInFlight / 2 && this.inFlight < this.maxInFlight) {
      this.paused = false;
      this.zj?.connection?.resume();
    }
  }

  private async handle({ e, at }: Queued): Promise<void> {
    switch (e.getEventName()) {
      case 'gtid':
      case 'mariadbgtid':
      case 'anonymousgtid':
        this.begin(e.getEventName() === 'anonymousgtid' ? undefined : e.gtid, e, at!);
        return;
      case 'query':
        return this.onQuery(e as QueryEvent, at!);
      case 'xid':
        this.end(at!, undefined);
        return;
      case 'writerows':
        return this.onRows(e as WriteRowsEvent, ChangeTypes.insert);
      case 'updaterows':
        return this.onRows(e as UpdateRowsEvent, ChangeTypes.update);
      case 'deleterows':
        return this.onRows(e as DeleteRowsEvent, ChangeTypes.delete);
      default:
        return;
    }
  }

  private begin(gtid: string | undefined, e: AnyBinlogEvent, at: Snapshot): Trx {
    // A group that never saw its commit marker (a standalone group of statements not published) ends here: the
    // GTID set zongji reports at a new group already counts the previous one.
    if (this.cur !== undefined) this.end(at, undefined);
    const file = at.file ?? '';
    const start = e.nextPosition > 0 ? e.nextPosition - e.size : (this.lastEnd?.position ?? 0);
    this.cur = this.tracker.open(gtid ?? `${file}:${start}`, gtid ?? null, file, start);
    return this.cur;
  }

  private end(at: Snapshot, gtid: string | undefined): void {
    const trx = this.cur;
    if (trx === undefined) return;
    this.cur = undefined;
    this.lastEnd = at;
    this.tracker.close(trx, positionAfter(at, gtid, this.isMariaDb));
  }

  private async onQuery(e: QueryEvent, at: Snapshot): Promise<void> {
    const sql = e.query.trim();
    if (COMMIT_RE.test(sql)) {
      this.end(at, undefined);
      return;
    }
    if (BEGIN_RE.test(sql)) {
      if (this.cur === undefined) this.begin(e.gtid, e, at);
      return;
    }
    const trx = this.cur ?? this.begin(e.gtid, e, at);
    // The table of a cached primary key may have changed.
    this.pkCache.clear();
    if (this.publishesDdl(e.schema, sql)) {
      const env = this.envelope(trx, ChangeTypes.ddl, e.schema, null, null, null, [], undefined, e.timestamp, sql);
      await this.broadcast(trx, env);
    }
    // DDL commits implicitly: its group has no commit marker.
    this.end(at, trx.gtid ?? undefined);
  }

  private publishesDdl(schema: string, sql: string): boolean {
    const tables = this.options.tables[schema];
    if (tables === undefined) return false;
    if (tables === true) return true;
    const lower = sql.toLowerCase();
    return tables.some((t) => new RegExp(`\\b${t.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(lower));
  }

  private async onRows(e: WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent, type: ChangeType): Promise<void> {
    const tm = e.tableMap[e.tableId];
    if (tm === undefined) return;
    const schema = tm.parentSchema;
    const table = tm.tableName;
    const pk = await this.primaryKeyColumns(schema, table);
    const trx = this.cur ?? this.begin(undefined, e, this.lastEnd ?? { gtidSet: undefined, file: undefined, position: undefined });
    for (const row of e.rows) {
      const binary = new Set<string>();
      let before: RowImage | null = null;
      let after: RowImage | null = null;
      if (type === ChangeTypes.update) {
        const r = row as { before: Record<string, unknown>; after: Record<string, unknown> };
        before = toRowImage(r.before, binary);
        after = toRowImage(r.after, binary);
      } else if (type === ChangeTypes.insert) {
        after = toRowImage(row as Record<string, unknown>, binary);
      } else {
        before = toRowImage(row as Record<string, unknown>, binary);
      }
      const key = primaryKeyOf(after ?? before, pk);
      const env = this.envelope(trx, type, schema, table, before, after, pk, binary, e.timestamp, undefined, key);
      await this.send(trx, env, rowKey(this.mode, schema, table, key));
    }
  }

  private envelope(trx: Trx, type: ChangeType, schema: string, table: string | null, before: RowImage | null,
    after: RowImage | null, pk: readonly string[], binary: Set<string> | undefined, timestamp: number,
    ddl?: string, key: RowImage | null = null): ChangeEnvelope {
    const rowIndex = trx.rows++;
    return {
      version: ENVELOPE_VERSION, type, schema, table, before, after, primaryKeyColumns: pk, primaryKey: key,
      ...(binary !== undefined && binary.size > 0 ? { base64Columns: [...binary] } : {}),
      gtid: trx.gtid, binlog: { file: trx.file, position: trx.start }, timestamp, transactionId: trx.id, rowIndex,
      dedupeKey: `${trx.id}#${rowIndex}`, ...(ddl === undefined ? {} : { ddl }),
    };
  }

  private async primaryKeyColumns(schema: string, table: string): Promise<readonly string[]> {
    const k = `${schema}.${table}`;
    const cached = this.pkCache.get(k);
    if (cached !== undefined) return cached;
    const [rows] = await this.ctrl!.query<RowDataPacket[]>(
      'SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ' +
      "AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", [schema, table]);
    const cols = rows.map((r) => String(r['c']));
    this.pkCache.set(k, cols);
    return cols;
  }

  /** A DDL statement goes to every partition, each copy with the same dedupe key. */
  private async broadcast(trx: Trx, env: ChangeEnvelope): Promise<void> {
    const value = JSON.stringify(env);
    const topic = this.options.topic;
    let first = 0;
    if (!this.partitionCounts.has(topic)) {
      // The partition count is learnt from the partitioner when the first copy is sent.
      await this.send(trx, value, indexKey(0), true);
      first = 1;
    }
    const n = this.partitionCounts.get(topic) ?? 1;
    for (let i = first; i < n; i++) await this.send(trx, value, indexKey(i));
  }

  /**
   * Sends one message of `trx`, the open transaction. Waits while `maxInFlight` messages await their answer, or while
   * the finished transactions not yet covered by a saved position hold `maxInFlight` messages: acknowledgements can
   * outrun a slow position store, and without that bound a crash would re-publish whatever was acked during the
   * slowest save. The open transaction does not count, so one larger than `maxInFlight` still goes through.
   */
  private async send(trx: Trx, env: ChangeEnvelope | string, key: string, waitAck = false): Promise<void> {
    while ((this.inFlight >= this.maxInFlight || this.stats.unsaved - trx.sent >= this.maxInFlight) && !this.stopping) {
      await new Promise<void>((r) => { this.permit = r; });
      this.permit = undefined;
    }
    if (this.stopping) return;
    this.inFlight++;
    this.stats.sent++;
    this.tracker.sent(trx);
    const sent = this.producer.send({ topic: this.options.topic, value: typeof env === 'string' ? env : JSON.stringify(env), key })
      .then(() => {
        this.inFlight--;
        this.stats.acked++;
        this.permit?.();
        this.maybeResume();
        this.tracker.acked(trx);
      }, (err: unknown) => this.fail(err as Error));
    if (waitAck) await sent;
  }
}
