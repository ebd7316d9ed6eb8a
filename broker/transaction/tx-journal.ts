/**
 * The transaction journal: append-only files `<dir>/<seq:20>.txlog` of {@link TxRecord}s, each with a CRC.
 *
 * Crash semantics:
 * - {@link TxJournal.append} resolves once the record is written to the file (the OS page cache: it survives
 *   kill -9), and once fsynced too when `sync` is set. Writes are batched: every record queued while a write runs
 *   goes out in the next writev, and one fdatasync covers every sync request of that batch.
 * - Open replays every file in order. A torn or corrupt tail of the newest file is cut (and logged with its byte
 *   range); damage in an older file, which was complete when the next file was made, refuses the start.
 * - A checkpoint (when the file reaches `maxFileSize`, every `checkpointIntervalMs`, and after recovery) opens a
 *   new file, rewrites into it the records of every transaction still unfinished (`live()`), fsyncs it and its
 *   directory, and only then deletes the older files. A crash in between leaves old and new files: replay reads
 *   both and the duplicates merge (puts by message id).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { MetaqError, ErrorCodes, StorageError } from '../../sdk/errors.js';
import { isErrno, joinPath, NodeFileIO } from '../store/file-io.js';
import { decodeTxRecord, encodeTxRecord, JOURNAL_MAGIC, type TxRecord } from './tx-records.js';

export interface TxJournalOptions {
  /** The `transactions` directory. */
  readonly dir: string;
  readonly logger: Logger;
  /** A new file (with a checkpoint) once the current one is at least this big. Default 64 MiB (MetaQ's). */
  readonly maxFileSize?: number;
  /** Largest record body accepted at replay. */
  readonly maxRecordBytes: number;
}

/** What replay found. */
export interface JournalReplay {
  readonly records: TxRecord[];
  readonly files: number;
  readonly bytes: number;
  /** Byte ranges cut from the newest file's tail. */
  readonly cut: { file: string; from: number; to: number; problem: string } | null;
}

interface Waiter { sync: boolean; resolve(): void; reject(e: Error): void }

const SUFFIX = '.txlog';
const DEFAULT_MAX_FILE = 64 * 1024 * 1024;

function fileName(seq: number): string {
  return `${String(seq).padStart(20, '0')}${SUFFIX}`;
}

export class TxJournal {
  /** The broker store's file layer: writev continues after a short write, directories are fsynced. */
  private readonly io = new NodeFileIO();
  private fd: number | null = null;
  private seq = 0;
  private size = 0;
  private files: number[] = [];
  private queue: Buffer[] = [];
  private waiters: Waiter[] = [];
  private running = false;
  private checkpointWanted = false;
  private failure: Error | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** The records that rebuild every unfinished transaction; set by the owner before the first checkpoint. */
  live: () => TxRecord[] = () => [];

  private constructor(private readonly options: TxJournalOptions) {}

  /** Opens the directory and replays it; the journal appends to a fresh file after {@link checkpoint}. */
  static async open(options: TxJournalOptions): Promise<{ journal: TxJournal; replay: JournalReplay }> {
    const j = new TxJournal(options);
    const replay = await j.replay();
    return { journal: j, replay };
  }

  /** Files on disk, oldest first (tests). */
  get fileCount(): number {
    return this.files.length;
  }

  /** Queues a record; resolves once written (and fsynced when `sync`). Rejects once the journal failed. */
  append(record: TxRecord, sync: boolean): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new MetaqError(ErrorCodes.SHUTTING_DOWN, 'transaction journal closed'));
    this.queue.push(encodeTxRecord(record));
    return new Promise((resolve, reject) => {
      this.waiters.push({ sync, resolve, reject });
      this.kick();
    });
  }

  /** An fdatasync of everything written so far (flushTxLogAtCommit=2 calls it every second). */
  sync(): Promise<void> {
    if (this.failure !== null || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ sync: true, resolve, reject });
      this.kick();
    });
  }

  /** Rolls to a new file holding only the live transactions, then deletes the older files. */
  checkpoint(): Promise<void> {
    this.checkpointWanted = true;
    return this.sync();
  }

  /** Writes what is queued, fsyncs, and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.fd !== null && this.failure === null) await this.sync();
    this.closed = true;
    while (this.running) await new Promise<void>((r) => this.idleWaiters.push(r));
    if (this.fd !== null) await this.io.close(this.fd);
    this.fd = null;
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (this.waiters.length > 0 && this.failure === null) {
      const bufs = this.queue;
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      try {
        if (this.fd === null || this.checkpointWanted) await this.roll();
        if (bufs.length > 0) this.size += await this.io.writev(this.fd!, bufs, this.size);
        if (waiters.some((w) => w.sync)) await this.io.fdatasync(this.fd!);
        for (const w of waiters) w.resolve();
        if (this.size >= (this.options.maxFileSize ?? DEFAULT_MAX_FILE)) this.checkpointWanted = true;
      } catch (e) {
        this.failure = new StorageError(`transaction journal write failed in ${this.options.dir}: ${(e as Error).message}`,
          { cause: e });
        this.options.logger.error({ err: e, dir: this.options.dir }, 'transaction journal failed: transactions refused');
        for (const w of [...waiters, ...this.waiters]) w.reject(this.failure);
        this.waiters = [];
        this.queue = [];
      }
    }
    this.running = false;
    const idle = this.idleWaiters;
    this.idleWaiters = [];
    for (const fn of idle) fn();
  }

  /** New file with the live transactions' records, fsynced (file and directory) before the old files go. */
  private async roll(): Promise<void> {
    this.checkpointWanted = false;
    const { io } = this;
    const dir = this.options.dir;
    const seq = this.seq + 1;
    const fd = await io.open(joinPath(dir, fileName(seq)), 'wx+');
    let size: number;
    try {
      size = await io.writev(fd, [JOURNAL_MAGIC, ...this.live().map(encodeTxRecord)], 0);
      await io.fdatasync(fd);
      await io.fsyncDir(dir);
    } catch (e) {
      await io.close(fd).catch(() => undefined);
      throw e;
    }
    const old = this.fd;
    this.fd = fd;
    this.seq = seq;
    this.size = size;
    if (old !== null) await io.close(old);
    const stale = this.files;
    this.files = [seq];
    for (const s of stale) {
      await io.unlink(joinPath(dir, fileName(s))).catch((e: unknown) => { if (!isErrno(e, 'ENOENT')) throw e; });
    }
    if (stale.length > 0) await io.fsyncDir(dir);
  }

  private async replay(): Promise<JournalReplay> {
    const { dir, logger } = this.options;
    await this.io.mkdir(dir);
    const seqs = (await this.io.readdir(dir)).filter((n) => /^\d{20}\.txlog$/.test(n)).map((n) => Number(n.slice(0, 20)))
      .sort((a, b) => a - b);
    const records: TxRecord[] = [];
    let bytes = 0;
    let cut: JournalReplay['cut'] = null;
    for (let i = 0; i < seqs.length; i++) {
      const name = joinPath(dir, fileName(seqs[i]!));
      const buf = await readFile(name);
      bytes += buf.length;
      const newest = i === seqs.length - 1;
      let pos = 0;
      let problem: string | null = null;
      if (buf.length < JOURNAL_MAGIC.length || !buf.subarray(0, JOURNAL_MAGIC.length).equals(JOURNAL_MAGIC)) {
        // A crash right after creating the file can leave it shorter than its magic.
        problem = buf.length < JOURNAL_MAGIC.length && JOURNAL_MAGIC.subarray(0, buf.length).equals(buf)
          ? 'incomplete file header' : 'bad file magic';
      } else {
        pos = JOURNAL_MAGIC.length;
        while (pos < buf.length) {
          const f = decodeTxRecord(buf, pos, this.options.maxRecordBytes);
          if (!f.ok) { problem = f.problem; break; }
          records.push(f.record);
          pos += f.size;
        }
      }
      if (problem === null) continue;
      if (!newest) {
        throw new MetaqError(ErrorCodes.CORRUPT_RECORD, `transaction journal ${name} is damaged at byte ${pos} ` +
          `(${problem}) and is not the newest file: remove it by hand only if its transactions may be lost`);
      }
      cut = { file: name, from: pos, to: buf.length, problem };
      logger.warn(cut, 'transaction journal: cut the damaged tail of the newest file');
    }
    this.files = seqs;
    this.seq = seqs[seqs.length - 1] ?? 0;
    logger.info({ dir, files: seqs.length, bytes, records: records.length }, 'transaction journal replayed');
    return { records, files: seqs.length, bytes, cut };
  }
}
