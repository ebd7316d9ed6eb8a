/**
 * The publisher's transactions in binlog order and the saving of its resume position: the end position of a
 * transaction is saved once it and every transaction before it ended and had all their messages acknowledged. One save
 * runs at a time; the next one takes the newest such position (those passed meanwhile are never written).
 */
import { GtidSet, MariadbGtidPosition } from '@vlasky/zongji';
import type { BinlogPosition, PositionStore } from './position-store.js';

/** zongji's resume point, read synchronously when an event arrives (it moves on while earlier events queue). */
export interface Snapshot {
  readonly gtidSet: string | undefined;
  readonly file: string | undefined;
  readonly position: number | undefined;
}

export interface Trx {
  readonly id: string;
  readonly gtid: string | null;
  readonly file: string;
  readonly start: number;
  rows: number;
  /** Messages sent (a DDL statement is one row and one message per partition). */
  sent: number;
  pending: number;
  ended: boolean;
  position: BinlogPosition | undefined;
}

/** The publisher's counters the tracker keeps. */
export interface TrackerStats {
  transactions: number;
  /** Positions saved. */
  checkpoints: number;
  /** Messages sent beyond the saved position. */
  unsaved: number;
}

/**
 * The resume position after a transaction ending at `at`. `gtid` is a DDL group's own GTID: zongji counts such a group
 * as executed only when the next group starts, but the publisher knows it is done now.
 */
export function positionAfter(at: Snapshot, gtid: string | undefined, isMariaDb: boolean): BinlogPosition {
  const gtidSet = gtid === undefined || at.gtidSet === undefined ? at.gtidSet : withGtid(at.gtidSet, gtid, isMariaDb);
  return {
    ...(gtidSet === undefined ? {} : { gtidSet }),
    ...(at.file === undefined ? {} : { file: at.file }),
    ...(at.position === undefined ? {} : { position: at.position }),
  };
}

function withGtid(set: string, gtid: string, isMariaDb: boolean): string {
  if (isMariaDb) {
    const p = MariadbGtidPosition.parse(set);
    const [d, s, n] = gtid.split('-');
    p.add({ domainId: Number(d), serverId: Number(s), seqNo: n! });
    return p.toString();
  }
  const g = GtidSet.parse(set);
  g.add(gtid);
  return g.toString();
}

/**
 * @example
 * ```ts
 * const tracker = new TransactionTracker(store, stats, (p) => log.info(p, 'saved'), fail);
 * const trx = tracker.open('0-1-7', '0-1-7', 'binlog.000001', 4);
 * tracker.sent(trx); tracker.close(trx, position); tracker.acked(trx);   // saves `position`
 * ```
 */
export class TransactionTracker {
  /** Open or not fully acknowledged, oldest first. */
  private readonly trxs: Trx[] = [];
  private toSave: BinlogPosition | undefined;
  /** Messages of the transactions covered by `toSave`. */
  private toSaveMessages = 0;
  private saving: Promise<void> | undefined;

  constructor(private readonly store: PositionStore, private readonly stats: TrackerStats,
    private readonly onSaved: (position: BinlogPosition) => void, private readonly onError: (e: Error) => void) {}

  open(id: string, gtid: string | null, file: string, start: number): Trx {
    const trx: Trx = { id, gtid, file, start, rows: 0, sent: 0, pending: 0, ended: false, position: undefined };
    this.trxs.push(trx);
    return trx;
  }

  /** A message of `trx` went out. */
  sent(trx: Trx): void {
    trx.pending++;
    trx.sent++;
    this.stats.unsaved++;
  }

  acked(trx: Trx): void {
    trx.pending--;
    this.advance();
  }

  /** `trx` has all its messages sent; `position` resumes after it. */
  close(trx: Trx, position: BinlogPosition): void {
    trx.ended = true;
    trx.position = position;
    this.stats.transactions++;
    this.advance();
  }

  /** Resolves when no save runs any more (the last one having taken the newest position). */
  async flush(): Promise<void> {
    while (this.saving !== undefined) await this.saving;
  }

  /** Moves the position to save past every finished transaction whose messages were all acknowledged. */
  private advance(): void {
    let latest: BinlogPosition | undefined;
    while (this.trxs.length > 0 && this.trxs[0]!.ended && this.trxs[0]!.pending === 0) {
      const trx = this.trxs.shift()!;
      latest = trx.position ?? latest;
      this.toSaveMessages += trx.sent;
    }
    if (latest === undefined) return;
    this.toSave = latest;
    this.saving ??= this.saveLoop();
  }

  private async saveLoop(): Promise<void> {
    try {
      for (let p = this.toSave; p !== undefined; p = this.toSave) {
        const covered = this.toSaveMessages;
        this.toSave = undefined;
        this.toSaveMessages = 0;
        await this.store.save(p);
        this.stats.checkpoints++;
        this.stats.unsaved -= covered;
        this.onSaved(p);
      }
    } catch (e) {
      this.onError(e as Error);
    } finally {
      this.saving = undefined;
    }
  }
}
