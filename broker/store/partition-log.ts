/**
 * One topic-partition: an append-only sequence of segment files addressed by byte offset.
 *
 * Crash semantics (what `whenStored` promises):
 * - group commit (`unflushThreshold <= 0`): the callback runs after an fdatasync that covers the record; readers see
 *   only fsynced bytes. An ack survives power loss.
 * - threshold/interval: the callback runs after the write to the OS; fdatasync runs when more than
 *   `unflushThreshold` messages are unsynced or on the `unflushInterval` timer. An ack survives kill -9; a power
 *   loss may lose the unsynced window.
 * - A failed write or fsync fails every pending callback and the partition refuses all later appends
 *   (FsyncFailedError); the fsync is never retried. ENOSPC fails the pending records with DiskFullError, cuts the
 *   file back to the last good record and lets appends resume once space is back.
 * - A roll fsyncs the sealed segment before creating the next file (and fsyncs the directory after), so a crash
 *   never leaves a gap between segments.
 */
import type { Logger } from 'pino';
import type { MetaqError } from '../../sdk/errors.js';
import {
  DiskFullError, FsyncFailedError, InvalidArgumentError, MessageTooLargeError, OffsetOutOfRangeError, ShuttingDownError,
} from '../../sdk/errors.js';
import { RECORD_HEADER_SIZE, writeRecordHeader } from '../../sdk/protocol/record.js';
import type { TopicConfig } from '../config/broker-config.js';
import type { DiskState } from './disk-watermark.js';
import type { FileIO } from './file-io.js';
import { isErrno, joinPath } from './file-io.js';
import type { Failpoints } from './failpoints.js';
import { FailpointNames } from './failpoints.js';
import type { ChunkPool, FlushTarget, Flusher } from './flusher.js';
import type { PartitionRecovery } from './recovery.js';
import { recordStartAtOrBefore, scanRecords } from './record-scan.js';
import { Segment } from './segment.js';
import { CLEAN_SHUTDOWN_FILE, segmentFileName, writeStateFile } from './segment-files.js';

/** What a partition needs from its store. */
export interface PartitionLogDeps {
  readonly io: FileIO;
  readonly logger: Logger;
  readonly failpoints: Failpoints | undefined;
  readonly flusher: Flusher;
  readonly pool: ChunkPool;
  readonly disk: DiskState;
  readonly maxSegmentSize: number;
  readonly maxMessageSize: number;
  /** Called after a segment roll (the store re-checks the disk watermark). */
  readonly onRoll: () => void;
}

export interface PartitionLogInit {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  readonly config: TopicConfig;
  /** Absent for a partition created by a put: its directory and first segment are made by the first flush. */
  readonly recovered?: PartitionRecovery;
  /** Offset of the first segment of a new partition (an async slave starts at its master's first offset). Default 0. */
  readonly startOffset?: number;
}

/** The bytes a truncation removed: `[from, to)`. */
export interface TruncatedRange {
  readonly from: number;
  readonly to: number;
  readonly bytes: number;
  readonly records: number;
}

/** A segment detached from the log by retention. */
export interface DetachedSegment {
  readonly path: string;
  readonly start: number;
  readonly size: number;
}

interface Chunk { buf: Buffer; used: number; seg: Segment; pooled: boolean }
type StoredCallback = (err: Error | null) => void;

const EMPTY = Buffer.alloc(0);

export class PartitionLog implements FlushTarget {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  readonly config: TopicConfig;
  private readonly deps: PartitionLogDeps;
  private readonly groupCommit: boolean;
  private readonly segs: Segment[];
  private chunks: Chunk[] = [];
  private tail: Chunk | null = null;
  private end: number;
  private written: number;
  private durable: number;
  private pendingMsgs = 0;
  private unsyncedMsgs = 0;
  private appended = 0;
  private readonly recoveredMsgs: number;
  private inFlight = false;
  private queued = false;
  private syncRequested = false;
  /** A background fdatasync (threshold/interval mode) is running. */
  private syncing = false;
  private dirReady: boolean;
  private refusal: MetaqError | null = null;
  private failure: FsyncFailedError | null = null;
  private waitT: number[] = [];
  private waitCb: StoredCallback[] = [];
  private waitHead = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(init: PartitionLogInit, deps: PartitionLogDeps) {
    this.topic = init.topic;
    this.partition = init.partition;
    this.dir = init.dir;
    this.config = init.config;
    this.deps = deps;
    this.groupCommit = init.config.unflushThreshold <= 0;
    const rec = init.recovered;
    this.dirReady = rec !== undefined;
    this.segs = (rec?.segments ?? []).map((s) => new Segment(s.start, s.path, s.size, true));
    if (this.segs.length === 0) {
      const start = rec?.emptyStart ?? init.startOffset ?? 0;
      this.segs.push(new Segment(start, joinPath(this.dir, segmentFileName(start)), 0, false));
    }
    const last = this.segs[this.segs.length - 1]!;
    this.end = this.written = this.durable = last.start + last.size;
    this.recoveredMsgs = rec?.scannedRecords ?? 0;
  }

  /** First readable byte offset (start of the oldest segment). */
  get startOffset(): number {
    return this.segs[0]!.start;
  }

  /** Where the next appended record starts (includes records not yet written). */
  get endOffset(): number {
    return this.end;
  }

  /** What readers may see: the fsynced end in group commit, the written end otherwise. */
  get readableEnd(): number {
    return this.groupCommit ? this.durable : this.written;
  }

  /** End of the bytes known to be on stable storage (what the store's recovery-point checkpoint records). */
  get durableEnd(): number {
    return this.durable;
  }

  /**
   * Records appended since open plus those checked by recovery. Approximate: records before the recovery point
   * of an unclean start, and all records of a clean start, are not counted (counting them would need a full scan).
   */
  get messageCount(): number {
    return this.appended + this.recoveredMsgs;
  }

  /** Set once a write or fsync failed: the partition refuses appends for good. */
  get failed(): FsyncFailedError | null {
    return this.failure;
  }

  /** Segment start offsets, oldest first (for stats and tests). */
  segmentStarts(): number[] {
    return this.segs.map((s) => s.start);
  }

  /**
   * Hot path: copies the header and `data` into the pending batch and returns the record's offset. No syscall and,
   * in the steady state, no allocation. Throws FsyncFailedError, DiskFullError, ShuttingDownError,
   * MessageTooLargeError.
   */
  append(idHi: number, idLo: number, flag: number, data: Buffer, crc: number): number {
    if (this.refusal !== null) throw this.refusal;
    if (this.deps.disk.full) throw new DiskFullError(this.deps.disk.path, 'used space above diskMaxUsedRatio');
    const len = data.length;
    if (len > this.deps.maxMessageSize) throw new MessageTooLargeError(len, this.deps.maxMessageSize);
    const size = RECORD_HEADER_SIZE + len;
    let seg = this.segs[this.segs.length - 1]!;
    if (this.end - seg.start >= this.deps.maxSegmentSize) seg = this.roll();
    let c = this.tail;
    if (c === null || c.buf.length - c.used < size) c = this.newChunk(size, seg);
    writeRecordHeader(c.buf, c.used, len, crc, idHi, idLo, flag);
    data.copy(c.buf, c.used + RECORD_HEADER_SIZE);
    c.used += size;
    const offset = this.end;
    this.end += size;
    this.pendingMsgs++;
    this.appended++;
    if (!this.queued) { this.queued = true; this.deps.flusher.mark(this); }
    return offset;
  }

  /**
   * Moves the start of a log that never held a byte (nothing appended, no file made) to `start`: an async slave
   * whose partition was created empty (by a get) before it learnt its master's first offset. False if not empty.
   */
  rebaseEmpty(start: number): boolean {
    const seg = this.segs[0]!;
    if (this.segs.length !== 1 || seg.created || this.end !== seg.start || this.chunks.length > 0 || this.inFlight) return false;
    this.segs[0] = new Segment(start, joinPath(this.dir, segmentFileName(start)), 0, false);
    this.end = this.written = this.durable = start;
    return true;
  }

  /** `cb(null)` once every record appended before this call is stored per the flush policy; `cb(err)` if not. */
  whenStored(cb: StoredCallback): void {
    const target = this.end;
    if (this.failure !== null) { queueMicrotask(() => cb(this.failure)); return; }
    if (target <= (this.groupCommit ? this.durable : this.written)) { queueMicrotask(() => cb(null)); return; }
    this.waitT.push(target);
    this.waitCb.push(cb);
  }

  /**
   * Bytes `[offset, offset + n)`, n <= maxSize, within one segment and never past readableEnd; may cut a record.
   * Empty at (or past) readableEnd. Throws OffsetOutOfRangeError (with the start as nearest) below startOffset.
   */
  async read(offset: number, maxSize: number): Promise<Buffer> {
    const start = this.startOffset;
    if (offset < start) throw new OffsetOutOfRangeError(this.topic, this.partition, offset, start);
    const rEnd = this.readableEnd;
    if (offset >= rEnd || maxSize <= 0) return EMPTY;
    const i = this.segmentIndex(offset);
    const seg = this.segs[i]!;
    const next = this.segs[i + 1];
    const limit = next === undefined ? rEnd : Math.min(rEnd, next.start);
    const n = Math.min(maxSize, limit - offset);
    const buf = Buffer.allocUnsafe(n);
    const got = await seg.read(this.deps.io, buf, n, offset - seg.start);
    return got < n ? buf.subarray(0, got) : buf;
  }

  /** MetaQ getNearestOffset: the start of the segment holding `offset`; past the end → end; before → start. */
  nearestOffset(offset: number): number {
    if (offset < this.startOffset) return this.startOffset;
    const end = this.readableEnd;
    if (offset >= end) return end;
    return this.segs[this.segmentIndex(offset)]!.start;
  }

  /** `fn()` runs whenever readableEnd advances; returns the unsubscribe function. */
  onReadable(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  /** Asks for an fdatasync of everything written (the interval timer and close use it). */
  requestSync(): void {
    if (this.durable >= this.end || this.failure !== null) return;
    this.syncRequested = true;
    if (!this.queued) { this.queued = true; this.deps.flusher.mark(this); }
  }

  /** Resolves when nothing is pending or in flight (after {@link requestSync}: everything is durable or failed). */
  idle(): Promise<void> {
    if (!this.inFlight && !this.syncing && !this.hasWork()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses further appends with ShuttingDownError (close). */
  refuseAppends(): void {
    this.refusal ??= new ShuttingDownError(`partition ${this.topic}-${this.partition}`);
  }

  /** Final step of a clean close (after the store's checkpoint): clean-shutdown marker, descriptors closed. */
  async closeFiles(): Promise<void> {
    if (this.dirReady && this.failure === null && this.durable === this.end) {
      await writeStateFile(this.deps.io, this.dir, CLEAN_SHUTDOWN_FILE, this.durable, this.deps.failpoints);
    }
    for (const s of this.segs) await s.close(this.deps.io);
  }

  /** Sealed, fully durable segments that retention may consider, oldest first (never the active one). */
  retainableSegments(): DetachedSegment[] {
    const out: DetachedSegment[] = [];
    for (let i = 0; i + 1 < this.segs.length; i++) {
      const s = this.segs[i]!;
      if (!s.created || s.start + s.size > this.durable) break;
      out.push({ path: s.path, start: s.start, size: s.size });
    }
    return out;
  }

  /** Detaches the oldest segment if it starts at `start` and is retainable; the start offset moves forward. */
  detachOldest(start: number): DetachedSegment | undefined {
    const first = this.retainableSegments()[0];
    if (first === undefined || first.start !== start) return undefined;
    const seg = this.segs.shift()!;
    seg.removed = true;
    void seg.close(this.deps.io).catch(() => undefined);
    return first;
  }

  /**
   * Cuts the log back to `offset`, a record boundary in [startOffset, endOffset] (else InvalidArgumentError), once
   * the partition is idle; appends are refused meanwhile. Readers stop at `offset` at once, then `beforeCut` runs
   * before any file changes (the store makes its checkpoint agree with the new end). The newest segments are
   * unlinked first, each followed by a directory fsync, and the holding segment is cut and fdatasynced last, so a
   * crash at any step leaves a contiguous log that recovery opens. A failure once readers were cut leaves the
   * partition refusing writes (FsyncFailedError) until a restart recovers it.
   */
  async truncateTo(offset: number, beforeCut: () => Promise<void>): Promise<TruncatedRange> {
    const mine = this.refusal === null ? new ShuttingDownError(`partition ${this.topic}-${this.partition} (truncating)`) : null;
    if (mine !== null) this.refusal = mine;
    try {
      this.requestSync();
      await this.idle();
      if (this.failure !== null) throw this.failure;
      const to = this.end;
      if (!Number.isSafeInteger(offset) || offset < this.startOffset || offset > to ||
          (offset < to && (await recordStartAtOrBefore(this, offset)) !== offset)) {
        throw new InvalidArgumentError(`cannot truncate ${this.topic}-${this.partition} at ${offset}: ` +
          `not a record boundary within [${this.startOffset}, ${to}]`);
      }
      let records = 0;
      await scanRecords(this, offset, () => { records++; });
      if (offset === to) return { from: offset, to, bytes: 0, records: 0 };
      this.inFlight = true;  // close() waits for the cut through idle()
      try {
        await this.cutFiles(offset, beforeCut);
      } catch (e) {
        this.failure ??= new FsyncFailedError(this.topic, this.partition, { cause: e });
        this.refusal = this.failure;
        this.deps.logger.error({ topic: this.topic, partition: this.partition, offset, err: e },
          'truncation failed: the partition refuses writes until a restart recovers it');
        throw this.failure;
      } finally {
        this.inFlight = false;
        this.afterWork();
        this.notifyReadable();  // parked long polls beyond the new end get their answer now
      }
      this.appended = Math.max(this.appended - records, -this.recoveredMsgs);
      return { from: offset, to, bytes: to - offset, records };
    } finally {
      if (mine !== null && this.refusal === mine) this.refusal = null;
    }
  }

  private async cutFiles(offset: number, beforeCut: () => Promise<void>): Promise<void> {
    const io = this.deps.io;
    const i = this.segmentIndex(offset);
    const seg = this.segs[i]!;
    const later = this.segs.splice(i + 1).reverse();
    const oldSize = seg.size;
    seg.size = offset - seg.start;
    this.end = this.written = this.durable = offset;
    this.tail = null;
    await beforeCut();
    for (const s of later) {
      s.removed = true;
      await s.close(io);
      if (!s.created) continue;
      await io.unlink(s.path).catch((e: unknown) => { if (!isErrno(e, 'ENOENT')) throw e; });
      await io.fsyncDir(this.dir);
    }
    if (seg.created && oldSize > seg.size) {
      const fd = await seg.descriptor(io);
      await io.ftruncate(fd, seg.size);
      await io.fdatasync(fd);
    }
  }

  /** Flusher entry point. */
  runCycle(): void {
    this.queued = false;
    if (this.inFlight || !this.hasWork()) return;
    this.inFlight = true;
    void this.cycle();
  }

  private hasWork(): boolean {
    return this.chunks.length > 0 ||
      (this.syncRequested && !this.syncing && this.durable < this.written && this.failure === null);
  }

  private roll(): Segment {
    const seg = new Segment(this.end, joinPath(this.dir, segmentFileName(this.end)), 0, false);
    this.segs.push(seg);
    this.tail = null;
    this.deps.onRoll();
    return seg;
  }

  private newChunk(size: number, seg: Segment): Chunk {
    const pooled = size <= this.deps.pool.chunkSize;
    const c: Chunk = { buf: pooled ? this.deps.pool.take() : Buffer.allocUnsafe(size), used: 0, seg, pooled };
    this.chunks.push(c);
    this.tail = c;
    return c;
  }

  private async cycle(): Promise<void> {
    const chunks = this.chunks;
    this.chunks = [];
    this.tail = null;
    const msgs = this.pendingMsgs;
    this.pendingMsgs = 0;
    try {
      if (!this.dirReady) await this.makeDir();
      await this.writeChunks(chunks);
      if (this.groupCommit) {
        await this.sync();
        if (this.deps.failpoints?.active === true) {
          await this.deps.failpoints.hit(FailpointNames.AFTER_FSYNC_BEFORE_ACK, this.dir);
        }
        this.answer(this.durable);
      } else {
        this.answer(this.written);
        this.unsyncedMsgs += msgs;
        if (this.unsyncedMsgs > this.config.unflushThreshold) this.syncRequested = true;
        this.startBackgroundSync();
      }
      this.notifyReadable();
    } catch (e) {
      await this.onError(e);
    } finally {
      for (const c of chunks) if (c.pooled) this.deps.pool.give(c.buf);
      this.inFlight = false;
      this.afterWork();
    }
  }

  /**
   * Threshold/interval mode: the fdatasync runs beside the writes instead of between them (the acks never wait
   * for it), one at a time; it covers everything written before it started.
   */
  private startBackgroundSync(): void {
    if (!this.syncRequested || this.syncing || this.failure !== null) return;
    this.syncRequested = false;
    this.unsyncedMsgs = 0;
    this.syncing = true;
    this.sync()
      .catch((e: unknown) => this.onError(e))
      .finally(() => {
        this.syncing = false;
        this.afterWork();
      });
  }

  /** Schedules the next cycle if there is work, else wakes whoever waits for the partition to be idle. */
  private afterWork(): void {
    if (this.hasWork()) {
      if (!this.queued) { this.queued = true; this.deps.flusher.mark(this); }
    } else if (!this.inFlight && !this.syncing) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const fn of w) fn();
    }
  }

  private async makeDir(): Promise<void> {
    await this.deps.io.mkdir(this.dir);
    const parent = this.dir.slice(0, this.dir.lastIndexOf('/')) || '/';
    await this.deps.io.fsyncDir(parent);
    this.dirReady = true;
  }

  /** One writev per run of chunks belonging to the same segment (normally a single one). */
  private async writeChunks(chunks: Chunk[]): Promise<void> {
    const fp = this.deps.failpoints;
    let i = 0;
    while (i < chunks.length) {
      const seg = chunks[i]!.seg;
      const bufs: Buffer[] = [];
      let bytes = 0;
      for (; i < chunks.length && chunks[i]!.seg === seg; i++) {
        const c = chunks[i]!;
        bufs.push(c.buf.subarray(0, c.used));
        bytes += c.used;
      }
      if (!seg.created) await this.createSegment(seg);
      if (fp?.active === true) {
        await fp.hit(FailpointNames.DISK_FULL, this.dir);
        await fp.hit(FailpointNames.BEFORE_WRITE, this.dir);
      }
      await this.deps.io.writev(await seg.descriptor(this.deps.io), bufs, seg.size);
      seg.size += bytes;
      this.written = seg.start + seg.size;
    }
  }

  /** A roll: the sealed segment is made durable before the next file exists, then the new entry is fsynced. */
  private async createSegment(seg: Segment): Promise<void> {
    const idx = this.segs.indexOf(seg);
    const prev = idx > 0 ? this.segs[idx - 1] : undefined;
    if (prev !== undefined && prev.created && this.durable < prev.start + prev.size) await this.sync(prev);
    await seg.create(this.deps.io);
    await this.deps.io.fsyncDir(this.dir);
  }

  /** fdatasync of the segment last written (or `seg`); everything written so far becomes durable. */
  private async sync(seg?: Segment): Promise<void> {
    const target = this.written;
    if (this.durable >= target) return;
    const s = seg ?? this.segmentAt(target - 1);
    if (this.deps.failpoints?.active === true) await this.deps.failpoints.hit(FailpointNames.BEFORE_FSYNC, this.dir);
    const fd = await s.descriptor(this.deps.io);
    const t0 = performance.now();
    await this.deps.io.fdatasync(fd);
    this.deps.flusher.onFsync?.((performance.now() - t0) / 1000);
    // A background sync and a roll's sync may overlap: the durable end only moves forward.
    this.durable = Math.max(this.durable, seg === undefined ? target : seg.start + seg.size);
  }

  private segmentAt(offset: number): Segment {
    return this.segs[this.segmentIndex(offset)]!;
  }

  private segmentIndex(offset: number): number {
    let lo = 0;
    let hi = this.segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segs[mid]!.start <= offset) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  private answer(upTo: number): void {
    const t = this.waitT;
    const cbs = this.waitCb;
    let h = this.waitHead;
    while (h < t.length && t[h]! <= upTo) {
      const cb = cbs[h]!;
      h++;
      cb(null);
    }
    if (h === t.length) { t.length = 0; cbs.length = 0; h = 0; }
    this.waitHead = h;
  }

  private failWaiters(err: Error): void {
    const cbs = this.waitCb.slice(this.waitHead);
    this.waitT = [];
    this.waitCb = [];
    this.waitHead = 0;
    for (const cb of cbs) cb(err);
  }

  private notifyReadable(): void {
    for (const fn of this.listeners) fn();
  }

  private async onError(e: unknown): Promise<void> {
    if (isErrno(e, 'ENOSPC') && this.failure === null) {
      this.deps.disk.full = true;
      // Nothing after `written` reaches the file: drop it, cut any partial write, and reuse those offsets.
      try {
        const seg = this.segmentAt(Math.max(this.written - 1, this.startOffset));
        if (seg.created) await this.deps.io.ftruncate(await seg.descriptor(this.deps.io), seg.size);
        this.dropPending();
        this.end = this.written;
        this.deps.logger.warn({ topic: this.topic, partition: this.partition, err: e }, 'write failed: no space left');
        this.failWaiters(new DiskFullError(this.dir, 'no space left on device', { cause: e }));
        return;
      } catch (truncErr) {
        e = truncErr;
      }
    }
    this.failure ??= new FsyncFailedError(this.topic, this.partition, { cause: e });
    this.refusal = this.failure;
    this.deps.logger.error({ topic: this.topic, partition: this.partition, err: e },
      'write or fsync failed: the partition refuses all further writes');
    this.dropPending();
    this.failWaiters(this.failure);
  }

  private dropPending(): void {
    for (const c of this.chunks) if (c.pooled) this.deps.pool.give(c.buf);
    this.chunks = [];
    this.tail = null;
    this.pendingMsgs = 0;
    while (this.segs.length > 1 && !this.segs[this.segs.length - 1]!.created) this.segs.pop();
  }
}
