/**
 * An append-only, crash-safe record log in one directory, with an in-memory index of where each live record is.
 * Payloads stay on disk; the index costs a few dozen bytes per live record.
 *
 * Crash semantics:
 * - With `fsync: true` (default) a promise of `append`, `update` or `remove` resolves after an fdatasync covering
 *   it: it survives kill -9 and power loss. Calls made in the same tick (and while a write is running) share one
 *   write and one fdatasync.
 * - With `fsync: false` it resolves after the write to the OS: it survives kill -9, not a power loss.
 * - open() cuts a torn tail (logging what it cut), skips a damaged record that valid records follow (logging it;
 *   a skipped remove brings its record back: at-least-once, never corrupt bytes), and rebuilds the index.
 * - Compaction deletes segments with nothing live and rewrites mostly-dead ones by write + fsync + rename.
 *
 * Files: `<20-digit first seq>.jnl` segments (format in journal-format.ts), `*.compact` temp files of compaction.
 *
 * @example
 * ```ts
 * const journal = await Journal.open('/var/spool/metaq/orders', { fsync: true });
 * const seq = await journal.append(Buffer.from('hello'));
 * for await (const { seq, record } of journal.entries()) console.log(seq, record.toString());
 * await journal.remove(seq);
 * await journal.close();
 * ```
 */
import { mkdir, open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { InvalidArgumentError, ShuttingDownError, StorageError } from '../errors.js';
import {
  checkJournalRecord, JOURNAL_HEADER_SIZE, JournalRecordTypes, journalRecordSeq, MAX_JOURNAL_BODY,
  writeJournalRecord, type JournalRecordType,
} from './journal-format.js';
import {
  type CompactionContext, type JournalFailpoint, JournalFailpoints, maintainJournal, type MaintenanceHost,
} from './journal-compactor.js';
import {
  Segment, segmentFileName, SegmentFile, writeFully, type RecordLocation,
} from './journal-segment.js';
import { loadJournal, type JournalRecoveryReport } from './journal-loader.js';
import { syncDirectory } from './atomic-file.js';

export interface JournalOptions {
  /** fdatasync each write batch before its promises resolve; default true. */
  readonly fsync?: boolean;
  /** A segment rolls when the next write would pass this size; default 64 MiB. */
  readonly maxSegmentBytes?: number;
  /** Compaction runs only when the journal's files hold at least this many bytes; default 16 MiB. */
  readonly compactMinBytes?: number;
  /** ...and when dead bytes exceed live bytes by this factor; default 2. */
  readonly compactRatio?: number;
  /** Where recovery and compaction report; default silent. */
  readonly logger?: Logger;
  /** Test hook at the named failpoints; throwing there simulates a crash at that step. No-op by default. */
  readonly failpoint?: (name: JournalFailpoint, context: string) => void | Promise<void>;
}

/** A live record and its sequence number. */
export interface JournalEntry {
  readonly seq: number;
  /** A view of a read buffer that is never reused: keep it or copy it, as you like. */
  readonly record: Buffer;
}

/** Counters for tests and metrics. */
export interface JournalStats {
  appends: number;
  removes: number;
  updates: number;
  writes: number;
  fsyncs: number;
  compactions: number;
  deletedSegments: number;
}

interface Pending {
  readonly type: JournalRecordType;
  readonly seq: number;
  readonly body: Buffer | null;
  readonly update: boolean;
  pos: number;
  settle: (value: unknown) => void;
  reject: (e: Error) => void;
}

const DEFAULTS = { fsync: true, maxSegmentBytes: 64 * 1024 * 1024, compactMinBytes: 16 * 1024 * 1024, compactRatio: 2 };
/** Largest single write of a batch. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** entries() reads this much at once, so neighbouring records cost one read. */
const READ_AHEAD = 256 * 1024;
const openDirs = new Set<string>();

export class Journal {
  readonly stats: JournalStats = { appends: 0, removes: 0, updates: 0, writes: 0, fsyncs: 0, compactions: 0, deletedSegments: 0 };
  private queue: Pending[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> | undefined;
  private maintaining: Promise<void> | undefined;
  private maintainAgain = false;
  private rollRequested = false;
  private failure: Error | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly logger: Logger;
  private readonly ctx: CompactionContext;
  private readonly maintenanceHost: MaintenanceHost;

  private constructor(
    readonly dir: string,
    private readonly options: Required<Omit<JournalOptions, 'logger' | 'failpoint'>> & JournalOptions,
    private readonly index: Map<number, RecordLocation>,
    private readonly segments: Segment[],
    private nextSeq: number,
    /** What open() found and cut. */
    readonly recovery: JournalRecoveryReport,
  ) {
    this.logger = options.logger ?? pino({ enabled: false });
    const hook = options.failpoint;
    this.ctx = {
      dir, index, logger: this.logger,
      hit: hook === undefined ? () => Promise.resolve() : async (name, context) => { await hook(name, context); },
    };
    this.maintenanceHost = {
      ctx: this.ctx, segments, options, stats: this.stats,
      isClosed: () => this.closed,
      requestRoll: () => {
        this.rollRequested = true;
        if (!this.flushScheduled && this.flushing === undefined) {
          this.flushScheduled = true;
          setImmediate(this.startFlush);
        }
      },
    };
  }

  /** Opens (creating if needed) the journal in `dir`, recovering it as the module comment says. */
  static async open(dir: string, options: JournalOptions = {}): Promise<Journal> {
    const abs = resolve(dir);
    if (openDirs.has(abs)) throw new StorageError(`journal ${abs} is already open in this process`);
    openDirs.add(abs);
    try {
      const opts = { ...DEFAULTS, ...options };
      if (!(opts.maxSegmentBytes > 0)) throw new InvalidArgumentError(`maxSegmentBytes must be > 0`);
      await mkdir(abs, { recursive: true });
      const logger = options.logger ?? pino({ enabled: false });
      const loaded = await loadJournal(abs, opts.fsync, logger);
      return new Journal(abs, opts, loaded.index, loaded.segments, loaded.nextSeq, loaded.report);
    } catch (e) {
      openDirs.delete(abs);
      throw e;
    }
  }

  /** Number of live records. */
  get size(): number {
    return this.index.size;
  }

  /** True when `seq` is live. */
  has(seq: number): boolean {
    return this.index.has(seq);
  }

  /**
   * Appends a record; resolves with its sequence number once it is written (and fdatasync'ed with `fsync`). Seqs
   * increase across restarts: a seq is reused only for a record that was lost (a torn tail cut by open()). Do not
   * change `record` before the promise resolves.
   */
  append(record: Buffer): Promise<number> {
    const refused = this.refuse(record);
    if (refused !== undefined) return refused;
    const seq = this.nextSeq++;
    this.stats.appends++;
    return new Promise<number>((settle, reject) => {
      this.enqueue({ type: JournalRecordTypes.PUT, seq, body: record, update: false, pos: 0,
        settle: settle as (v: unknown) => void, reject });
    });
  }

  /** Replaces the record `seq` keeping its place in the order; resolves false (writing nothing) when not live. */
  update(seq: number, record: Buffer): Promise<boolean> {
    const refused = this.refuse(record);
    if (refused !== undefined) return refused;
    if (!this.index.has(seq)) return Promise.resolve(false);
    this.stats.updates++;
    return new Promise<boolean>((settle, reject) => {
      this.enqueue({ type: JournalRecordTypes.PUT, seq, body: record, update: true, pos: 0,
        settle: () => settle(true), reject });
    });
  }

  /** Removes the record `seq` (it leaves the index now, its remove record is durable on resolve); false when not live. */
  remove(seq: number): Promise<boolean> {
    const refused = this.refuse(null);
    if (refused !== undefined) return refused;
    const loc = this.index.get(seq);
    if (loc === undefined) return Promise.resolve(false);
    this.index.delete(seq);
    loc.seg.liveCount--;
    loc.seg.liveBytes -= loc.size;
    this.stats.removes++;
    return new Promise<boolean>((settle, reject) => {
      this.enqueue({ type: JournalRecordTypes.REMOVE, seq, body: null, update: false, pos: 0,
        settle: () => settle(true), reject });
    });
  }

  /** Reads the live record `seq` from disk; undefined when not live. Throws StorageError when its bytes are damaged. */
  async read(seq: number): Promise<Buffer | undefined> {
    this.checkOpen();
    const loc = this.index.get(seq);
    if (loc === undefined) return undefined;
    const { seg, pos, size } = loc;
    const buf = await seg.file.read(pos, size);
    if (!this.valid(buf, 0, size, seq, seg, pos)) {
      throw new StorageError(`journal record ${seq} in ${seg.path} at ${pos} is damaged`);
    }
    return buf.subarray(JOURNAL_HEADER_SIZE);
  }

  /**
   * The live records in append order, read from disk in large chunks. Records appended after the iteration began are
   * not visited; records removed before the iteration reaches them are skipped. A record damaged on disk since open
   * is logged and skipped.
   */
  async *entries(): AsyncGenerator<JournalEntry, void, undefined> {
    this.checkOpen();
    const end = this.nextSeq;
    let chunk: Buffer | undefined;
    let chunkFile: SegmentFile | undefined;
    let chunkStart = 0;
    for (const [seq, loc] of this.index) {
      if (seq >= end) break;
      this.checkOpen();
      const { seg, pos, size } = loc;
      if (chunk === undefined || chunkFile !== seg.file || pos < chunkStart || pos + size > chunkStart + chunk.length) {
        chunkFile = seg.file;
        chunkStart = pos;
        chunk = await chunkFile.read(pos, Math.max(size, Math.min(READ_AHEAD, seg.size - pos)));
        if (!this.index.has(seq)) continue;
      }
      const off = pos - chunkStart;
      if (!this.valid(chunk, off, size, seq, seg, pos)) continue;
      yield { seq, record: chunk.subarray(off + JOURNAL_HEADER_SIZE, off + size) };
    }
  }

  /** Resolves once everything accepted so far is written and background cleanup (deletion, compaction) is done. */
  async idle(): Promise<void> {
    while (this.flushScheduled || this.flushing !== undefined || this.maintaining !== undefined) {
      if (this.flushing !== undefined) await this.flushing;
      else if (this.maintaining !== undefined) await this.maintaining;
      else await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Writes what was accepted, stops maintenance and closes the files. Later calls fail with ShuttingDownError. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      await this.idle();
      for (const s of this.segments) await s.file.retire();
      openDirs.delete(this.dir);
    })();
    return this.closing;
  }

  private refuse(record: Buffer | null): Promise<never> | undefined {
    if (this.closed) return Promise.reject(new ShuttingDownError(`journal ${this.dir}`));
    if (this.failure !== undefined) {
      return Promise.reject(new StorageError(`journal ${this.dir} refuses writes after a failed write`, { cause: this.failure }));
    }
    if (record !== null && record.length > MAX_JOURNAL_BODY) {
      return Promise.reject(new InvalidArgumentError(`journal record of ${record.length} bytes exceeds ${MAX_JOURNAL_BODY}`));
    }
    return undefined;
  }

  private checkOpen(): void {
    if (this.closed) throw new ShuttingDownError(`journal ${this.dir}`);
  }

  private valid(buf: Buffer, off: number, size: number, seq: number, seg: Segment, pos: number): boolean {
    if (buf.length - off >= size && checkJournalRecord(buf, off, off + size) === size &&
      journalRecordSeq(buf, off) === seq) return true;
    this.logger.error({ segment: seg.path, position: pos, seq }, 'journal record damaged since open: skipped');
    return false;
  }

  private enqueue(p: Pending): void {
    this.queue.push(p);
    if (!this.flushScheduled && this.flushing === undefined) {
      this.flushScheduled = true;
      setImmediate(this.startFlush);
    }
  }

  private readonly startFlush = (): void => {
    this.flushScheduled = false;
    if (this.flushing !== undefined) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0 || this.rollRequested) {
        this.flushScheduled = true;
        setImmediate(this.startFlush);
      }
    });
  };

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0 || this.rollRequested) {
      if (this.failure !== undefined) {
        this.rejectAll(this.queue.splice(0), this.failure);
        this.rollRequested = false;
        return;
      }
      try {
        if (this.rollRequested && this.active.size > 0) await this.roll();
        this.rollRequested = false;
        const active = this.active;
        let bytes = 0;
        let n = 0;
        for (const p of this.queue) {
          const size = JOURNAL_HEADER_SIZE + (p.body === null ? 0 : p.body.length);
          if (n > 0 && bytes + size > MAX_BATCH_BYTES) break;
          if ((n > 0 || active.size > 0) && active.size + bytes + size > this.options.maxSegmentBytes) break;
          bytes += size;
          n++;
        }
        if (n === 0) {
          if (this.queue.length > 0) await this.roll();
          continue;
        }
        await this.writeBatch(active, this.queue.splice(0, n), bytes);
      } catch (e) {
        this.failure = e instanceof Error ? e : new Error(String(e));
        this.logger.error({ dir: this.dir, err: this.failure }, 'journal write failed: refusing further writes');
      }
    }
  }

  private async writeBatch(seg: Segment, batch: Pending[], bytes: number): Promise<void> {
    const buf = Buffer.allocUnsafe(bytes);
    const base = seg.size;
    let pos = 0;
    for (const p of batch) {
      p.pos = base + pos;
      pos = writeJournalRecord(buf, pos, p.type, p.seq, p.body);
    }
    try {
      await this.ctx.hit(JournalFailpoints.BEFORE_WRITE, seg.path);
      await writeFully(seg.file.handle, buf, base);
      this.stats.writes++;
      if (this.options.fsync) {
        await this.ctx.hit(JournalFailpoints.BEFORE_FSYNC, seg.path);
        await seg.file.handle.datasync();
        this.stats.fsyncs++;
      }
    } catch (e) {
      const err = new StorageError(`journal ${this.dir}: write to ${seg.path} failed`, { cause: e });
      this.rejectAll(batch, err);
      throw err;
    }
    seg.size = base + bytes;
    let maintain = false;
    for (const p of batch) maintain = this.apply(seg, p) || maintain;
    if (maintain) this.kickMaintenance();
  }

  /** Updates the index for a written record; true when the journal may now have something to clean up. */
  private apply(seg: Segment, p: Pending): boolean {
    const size = JOURNAL_HEADER_SIZE + (p.body === null ? 0 : p.body.length);
    if (p.type === JournalRecordTypes.REMOVE) {
      seg.removes.push(p.seq);
      p.settle(undefined);
      return true;
    }
    seg.addPhys(p.seq);
    const old = this.index.get(p.seq);
    if (p.update) {
      if (old === undefined) {
        p.settle(undefined);
        return true;
      }
      old.seg.liveCount--;
      old.seg.liveBytes -= old.size;
    }
    this.index.set(p.seq, { seg, pos: p.pos, size });
    seg.liveCount++;
    seg.liveBytes += size;
    p.settle(p.seq);
    return p.update;
  }

  private rejectAll(batch: Pending[], e: Error): void {
    for (const p of batch) p.reject(e);
  }

  private async roll(): Promise<void> {
    const prev = this.active;
    const base = Math.max(this.nextSeq, prev.baseSeq + 1);
    this.nextSeq = base;
    const seg = new Segment(this.dir, base, new SegmentFile(await open(join(this.dir, segmentFileName(base)), 'wx+')));
    if (this.options.fsync) await syncDirectory(this.dir);
    this.segments.push(seg);
    this.kickMaintenance();
  }

  private kickMaintenance(): void {
    if (this.maintaining !== undefined) {
      this.maintainAgain = true;
      return;
    }
    this.maintaining = maintainJournal(this.maintenanceHost)
      .catch((e: unknown) => this.logger.warn({ dir: this.dir, err: e }, 'journal maintenance failed; will retry'))
      .finally(() => {
        this.maintaining = undefined;
        if (this.maintainAgain && !this.closed) {
          this.maintainAgain = false;
          this.kickMaintenance();
        }
      });
  }
}

export { JournalFailpoints, type JournalFailpoint } from './journal-compactor.js';
export type { JournalRecoveryReport } from './journal-loader.js';
