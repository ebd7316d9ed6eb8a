/**
 * The broker's transactions (MetaQ's TransactionalCommandProcessor + JournalTransactionStore), local and XA.
 *
 * Guarantees:
 * - A put inside a transaction gets its message id at once and is journalled (answered once written to the
 *   journal file); nothing reaches a partition log before the commit.
 * - Commit journals its decision first (fsynced when flushTxLogAtCommit=1), then appends the messages as one
 *   contiguous batch per partition, answers once every batch is stored per its partition's flush policy, and then
 *   journals that the commit is done. After any crash a transaction is wholly visible or not at all: recovery
 *   completes a journalled commit (appending only the records not found on disk), brings prepared XA branches
 *   back as prepared, and rolls back everything else.
 * - PREPARE is always fsynced before its vote is answered.
 */
import type { Logger } from 'pino';
import { MetaqError, ErrorCodes } from '../../sdk/errors.js';
import { crc32Masked } from '../../sdk/protocol/record.js';
import { NO_CHECKSUM } from '../../sdk/protocol/commands.js';
import { parseTransactionKey } from '../../sdk/protocol/transaction-key.js';
import type { BrokerConfig } from '../config/broker-config.js';
import { joinPath } from '../store/file-io.js';
import type { IdWorker } from '../store/id-worker.js';
import type { MessageStore } from '../store/message-store.js';
import type { BrokerStats } from '../server/broker-stats.js';
import { Transaction, TxStates } from './transaction.js';
import type { SyncMaster } from '../ha/sync-master.js';
import { appendBatches, commitParts, completeCommit, groupByPartition } from './tx-apply.js';
import { TxJournal } from './tx-journal.js';
import { foldRecords } from './tx-replay.js';
import type { TxPut, TxRecord } from './tx-records.js';
import { XaCodes, XaError } from './xa-error.js';

/** The transaction journal's directory under `dataLogPath` (MetaQ's `transactions/`). */
export const TX_JOURNAL_DIR = 'transactions';

export interface TransactionManagerOptions {
  readonly config: BrokerConfig;
  readonly store: MessageStore;
  readonly idWorker: IdWorker;
  readonly stats: BrokerStats;
  readonly logger: Logger;
  /** Journal file size that triggers a checkpoint. Default 64 MiB. */
  readonly maxJournalFileSize?: number;
  /** Sync replication (a master may gain it at promotion): committed messages are stored on the slave too. */
  readonly syncMaster?: () => SyncMaster | null;
}

/** What recovery did at open. */
export interface TxRecoveryReport {
  readonly committedCompleted: number;
  readonly messagesFound: number;
  readonly messagesAppended: number;
  readonly preparedRestored: number;
  readonly rolledBack: number;
}

const TIMED_OUT_MEMORY = 10_000;

export class TransactionManager {
  private readonly xa = new Map<string, Transaction>();
  private readonly local = new Map<object, Map<string, Transaction>>();
  /** Committing transactions (also those whose appends failed: they are completed at the next start). */
  private readonly committing = new Set<Transaction>();
  private readonly timedOut = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private pendingTimeouts = 0;
  private report: TxRecoveryReport = { committedCompleted: 0, messagesFound: 0, messagesAppended: 0,
    preparedRestored: 0, rolledBack: 0 };
  private readonly logger: Logger;
  private readonly flushMode: number;

  private constructor(private readonly options: TransactionManagerOptions, private readonly journal: TxJournal) {
    this.logger = options.logger;
    this.flushMode = options.config.system.flushTxLogAtCommit;
    journal.live = () => this.liveRecords();
  }

  /**
   * Opens `<dataLogPath>/transactions`, replays it and recovers (call after the message store recovered and before
   * serving), then checkpoints so that the journal holds only what is still unfinished.
   */
  static async open(options: TransactionManagerOptions): Promise<TransactionManager> {
    const sys = options.config.system;
    const { journal, replay } = await TxJournal.open({
      dir: joinPath(sys.dataLogPath, TX_JOURNAL_DIR), logger: options.logger,
      maxRecordBytes: sys.maxMessageSize + 64 * 1024,
      ...(options.maxJournalFileSize === undefined ? {} : { maxFileSize: options.maxJournalFileSize }),
    });
    const m = new TransactionManager(options, journal);
    await m.recoverFromJournal(replay.records);
    if (sys.flushTxLogAtCommit === 2) {
      m.timers.push(setInterval(() => { void journal.sync(); }, 1000).unref());
    }
    m.timers.push(setInterval(() => {
      void journal.checkpoint().catch(() => undefined);
    }, Math.min(sys.checkpointInterval, 2 ** 31 - 1)).unref());
    return m;
  }

  get recoveryReport(): TxRecoveryReport {
    return this.report;
  }

  /** Journal files on disk (tests). */
  get journalFiles(): number {
    return this.journal.fileCount;
  }

  /** Forces a checkpoint now (tests; the timer does it every checkpointInterval). */
  checkpoint(): Promise<void> {
    return this.journal.checkpoint();
  }

  /** BEGIN: starts the transaction (a BEGIN of one that exists is a no-op, as in MetaQ; it resumes an ended one). */
  async begin(owner: object, key: string, timeoutSec: number | null): Promise<void> {
    const parsed = parseTransactionKey(key);
    if (parsed === null) throw new XaError(XaCodes.XAER_INVAL, 'Null transaction id');
    const isXa = parsed.kind === 'xa';
    this.options.stats.txBegin++;
    if (isXa) this.options.stats.txXaBegin++;
    const existing = isXa ? this.xa.get(key) : this.local.get(owner)?.get(key);
    if (existing !== undefined) {
      if (existing.state === TxStates.ENDED) existing.state = TxStates.ACTIVE;
      return;
    }
    const sys = this.options.config.system;
    const seconds = timeoutSec === null || timeoutSec <= 0 ? 0 : Math.min(timeoutSec, sys.maxTxTimeoutInSeconds);
    if (seconds > 0 && this.pendingTimeouts >= sys.maxTxTimeoutTimerCapacity) {
      throw new MetaqError(ErrorCodes.BROKER, `Too many transactions with a pending timeout ` +
        `(maxTxTimeoutTimerCapacity ${sys.maxTxTimeoutTimerCapacity})`);
    }
    const tx = new Transaction(key, isXa ? parsed : null, isXa ? null : owner, seconds);
    this.timedOut.delete(key);
    if (isXa) {
      this.xa.set(key, tx);
    } else {
      let map = this.local.get(owner);
      if (map === undefined) { map = new Map(); this.local.set(owner, map); }
      map.set(key, tx);
    }
    if (seconds > 0) {
      this.pendingTimeouts++;
      tx.timer = setTimeout(() => { this.disarm(tx); this.expire(tx); }, seconds * 1000);
      tx.timer.unref();
    }
    await this.journal.append({ type: 'begin', key, timeoutSec: seconds }, false);
  }

  /**
   * A put inside a transaction: assigns the message id and journals the message. Resolves with the id halves
   * (also in `idWorker.hi/lo` until the next id is made). Throws XaError, or a MetaqError with MetaQ's message.
   */
  async put(owner: object, key: string, topic: string, partition: number, flag: number, body: Buffer,
    checksum: number): Promise<TxPut> {
    if (partition === -1) throw new MetaqError(ErrorCodes.INVALID_ARGUMENT, `Invalid partition for transaction command:${partition}`);
    const tx = this.get(owner, key);
    if (tx.state !== TxStates.ACTIVE) {
      throw new XaError(XaCodes.XAER_PROTO, `Transaction '${key}' is ${tx.state}: no message may be put into it`);
    }
    this.options.store.getOrCreate(topic, partition);
    const crc = crc32Masked(body);
    if (checksum !== NO_CHECKSUM && checksum !== crc) {
      throw new MetaqError(ErrorCodes.CHECKSUM_MISMATCH,
        `Checksum failure,message may be corrupted: sent ${checksum}, computed ${crc}`);
    }
    const id = this.options.idWorker;
    id.next();
    const put: TxPut = { topic, partition, flag, idHi: id.hi, idLo: id.lo, crc, data: Buffer.from(body) };
    tx.puts.push(put);
    await this.journal.append({ type: 'put', key, put }, false);
    return put;
  }

  /** END: an active XA branch becomes ended (puts refused until a BEGIN resumes it). Unknown keys are ignored. */
  end(key: string): void {
    const tx = this.xa.get(key);
    if (tx !== undefined && tx.state === TxStates.ACTIVE) tx.state = TxStates.ENDED;
  }

  /** PREPARE: the vote, XA_OK (journalled and fsynced) or XA_RDONLY (nothing was put: the branch is gone). */
  async prepare(owner: object, key: string): Promise<number> {
    const tx = this.get(owner, key);
    if (!tx.isXa) throw new XaError(XaCodes.XAER_RMERR, 'Prepare not implemented on Local Transactions.');
    if (tx.state !== TxStates.ACTIVE && tx.state !== TxStates.ENDED) {
      throw new XaError(XaCodes.XAER_PROTO, 'Cannot call prepare now.');
    }
    if (tx.puts.length === 0) {
      this.remove(tx);
      await this.journal.append({ type: 'rollback', key }, false);
      return XaCodes.XA_RDONLY;
    }
    this.disarm(tx);
    tx.state = TxStates.PREPARED;
    try {
      await this.journal.append({ type: 'prepare', key }, true);
    } catch (e) {
      this.remove(tx);
      throw new XaError(XaCodes.XAER_RMERR, `Prepare could not be journalled: ${(e as Error).message}`, { cause: e });
    }
    return XaCodes.XA_OK;
  }

  /** COMMIT_ONE_PHASE / COMMIT_TWO_PHASE. Resolves once every message is stored. */
  async commit(owner: object, key: string, onePhase: boolean): Promise<void> {
    this.options.stats.txCommit++;
    const tx = this.get(owner, key);
    if (tx.state === TxStates.COMMITTING) throw new XaError(XaCodes.XAER_PROTO, 'Cannot call commit now.');
    const wasPrepared = tx.state === TxStates.PREPARED;
    if (tx.isXa && !wasPrepared && !onePhase) {
      throw new XaError(XaCodes.XAER_PROTO, 'Cannot do 2 phase commit if the transaction has not been prepared.');
    }
    this.disarm(tx);
    let batches;
    try {
      batches = groupByPartition(this.options.store, tx.puts);
    } catch (e) {
      await this.rollbackTx(tx);
      throw new XaError(XaCodes.XA_RBOTHER, `COMMIT FAILED: Transaction rolled back. ${(e as Error).message}`, { cause: e });
    }
    tx.state = TxStates.COMMITTING;
    tx.commit = { wasPrepared, parts: commitParts(batches) };
    this.committing.add(tx);
    try {
      await this.journal.append({ type: 'commit', key, ...tx.commit }, this.flushMode === 1);
    } catch (e) {
      throw new XaError(XaCodes.XAER_RMFAIL, `Commit could not be journalled, outcome unknown: ${(e as Error).message}`,
        { cause: e });
    }
    const errors = await appendBatches(batches, this.options.syncMaster?.() ?? null);
    if (errors.length > 0) {
      this.logger.error({ key, errors: errors.map((e) => e.message) },
        'transaction committed but not all its messages were stored: completed at the next start');
      throw new XaError(XaCodes.XA_HEURHAZ, `Commit journalled but its messages were not all stored ` +
        `(${errors[0]!.message}); the broker completes it when it restarts`);
    }
    this.remove(tx);
    this.journal.append({ type: 'commit-done', key }, false).catch(() => undefined);
  }

  /** ROLLBACK of a transaction in any state but committing. */
  async rollback(owner: object, key: string): Promise<void> {
    this.options.stats.txRollback++;
    const tx = this.get(owner, key);
    if (tx.state === TxStates.COMMITTING) throw new XaError(XaCodes.XAER_PROTO, 'Cannot call rollback now.');
    await this.rollbackTx(tx);
  }

  /** FORGET: accepted for any XA key, as MetaQ (which only forgets heuristic outcomes, and keeps none here). */
  async forget(key: string): Promise<void> {
    const parsed = parseTransactionKey(key);
    if (parsed === null || parsed.kind !== 'xa') throw new XaError(XaCodes.XAER_NOTA, `${key} is not a valid xid`);
    await this.journal.append({ type: 'forget', key }, false);
  }

  /** RECOVER: keys of the prepared XA branches of this unique qualifier (all of them when null). */
  recover(uniqueQualifier: string | null): string[] {
    const out: string[] = [];
    for (const tx of this.xa.values()) {
      if (tx.state === TxStates.PREPARED && (uniqueQualifier === null || tx.xa!.uniqueQualifier === uniqueQualifier)) {
        out.push(tx.key);
      }
    }
    return out;
  }

  /** A connection closed: its unfinished local transactions are rolled back (XA branches are not its own). */
  ownerClosed(owner: object): void {
    const map = this.local.get(owner);
    if (map === undefined) return;
    this.local.delete(owner);
    for (const tx of map.values()) {
      if (tx.state === TxStates.COMMITTING) continue;
      this.options.stats.txRollback++;
      this.rollbackTx(tx).catch((e: unknown) => this.logger.warn({ err: e, key: tx.key }, 'rollback on close failed'));
    }
  }

  /** Stops the timers and closes the journal (after the server answered everything). */
  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const tx of this.xa.values()) this.disarm(tx);
    for (const map of this.local.values()) for (const tx of map.values()) this.disarm(tx);
    await this.journal.close();
  }

  private get(owner: object, key: string): Transaction {
    const parsed = parseTransactionKey(key);
    if (parsed === null) throw new XaError(XaCodes.XAER_NOTA, 'Null xid');
    const tx = parsed.kind === 'xa' ? this.xa.get(key) : this.local.get(owner)?.get(key);
    if (tx !== undefined) return tx;
    if (this.timedOut.has(key)) {
      throw new XaError(XaCodes.XA_RBTIMEOUT, `Transaction '${key}' timed out and was rolled back.`);
    }
    if (parsed.kind === 'xa') throw new XaError(XaCodes.XAER_NOTA, `XA transaction '${key}' has not been started.`);
    throw new MetaqError(ErrorCodes.INVALID_ARGUMENT, `Local transaction '${key}' has not been started.`);
  }

  /** Stops the transaction's timeout, which then no longer counts against maxTxTimeoutTimerCapacity. */
  private disarm(tx: Transaction): void {
    if (tx.timer === null) return;
    clearTimeout(tx.timer);
    tx.timer = null;
    this.pendingTimeouts--;
  }

  private remove(tx: Transaction): void {
    this.disarm(tx);
    this.committing.delete(tx);
    if (tx.isXa) {
      if (this.xa.get(tx.key) === tx) this.xa.delete(tx.key);
    } else {
      const map = this.local.get(tx.owner!);
      if (map?.get(tx.key) === tx) map.delete(tx.key);
    }
  }

  private async rollbackTx(tx: Transaction): Promise<void> {
    const wasPrepared = tx.state === TxStates.PREPARED;
    this.remove(tx);
    await this.journal.append({ type: 'rollback', key: tx.key }, wasPrepared && this.flushMode === 1);
  }

  private expire(tx: Transaction): void {
    if (tx.state !== TxStates.ACTIVE && tx.state !== TxStates.ENDED) return;
    this.logger.warn({ key: tx.key, timeoutSec: tx.timeoutSec }, 'transaction timed out: rolled back');
    this.timedOut.add(tx.key);
    if (this.timedOut.size > TIMED_OUT_MEMORY) this.timedOut.delete(this.timedOut.keys().next().value!);
    this.options.stats.txRollback++;
    this.rollbackTx(tx).catch((e: unknown) => this.logger.warn({ err: e, key: tx.key }, 'timeout rollback failed'));
  }

  private liveRecords(): TxRecord[] {
    const live = new Set<Transaction>(this.xa.values());
    for (const map of this.local.values()) for (const tx of map.values()) live.add(tx);
    // Committing transactions may have left the maps (connection closed, recovered commits).
    for (const tx of this.committing) live.add(tx);
    const out: TxRecord[] = [];
    for (const tx of live) out.push(...tx.records());
    return out;
  }

  /**
   * Rebuilds the unfinished transactions in memory, checkpoints (the new journal file holds exactly them, so a crash
   * during what follows replays the same state), then completes the journalled commits.
   */
  private async recoverFromJournal(records: readonly TxRecord[]): Promise<void> {
    const maxMessageSize = this.options.config.system.maxMessageSize;
    let rolledBack = 0; let preparedRestored = 0;
    const toComplete: Transaction[] = [];
    for (const r of foldRecords(records)) {
      const parsed = parseTransactionKey(r.key);
      const xa = parsed?.kind === 'xa' ? parsed : null;
      if (r.commit === null && !(r.prepared && xa !== null)) { rolledBack++; continue; }
      const tx = new Transaction(r.key, xa, null, 0);
      tx.puts.push(...r.puts);
      if (r.commit !== null) {
        tx.state = TxStates.COMMITTING;
        tx.commit = r.commit;
        this.committing.add(tx);
        toComplete.push(tx);
      } else {
        tx.state = TxStates.PREPARED;
        this.xa.set(r.key, tx);
        preparedRestored++;
      }
    }
    await this.journal.checkpoint();
    let messagesFound = 0; let messagesAppended = 0;
    for (const tx of toComplete) {
      const { result, errors } = await completeCommit(this.options.store, tx.commit!.parts, tx.puts, maxMessageSize);
      if (errors.length > 0) {
        throw new MetaqError(ErrorCodes.STORAGE, `transaction ${tx.key}: completing its journalled commit failed: ` +
          `${errors[0]!.message}`, { cause: errors[0] });
      }
      messagesFound += result.present;
      messagesAppended += result.appended;
      this.logger.info({ key: tx.key, ...result }, 'transaction recovery: completed a journalled commit');
      this.committing.delete(tx);
      await this.journal.append({ type: 'commit-done', key: tx.key }, false);
    }
    this.report = { committedCompleted: toComplete.length, messagesFound, messagesAppended, preparedRestored, rolledBack };
    this.logger.info(this.report, 'transactions recovered');
  }
}
