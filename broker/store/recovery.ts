/**
 * Opening one partition directory: list and check the segments, then recover the tail.
 *
 * - Segments must be contiguous (`start + size == next.start`); a gap or overlap refuses the open with a
 *   StorageError naming both files, because it means files were lost or tampered with, not a crash.
 * - With a clean-shutdown marker whose end offset matches the files, nothing is scanned. Otherwise every record
 *   after the recovery point (from the data path's checkpoint, read once by the store) is checked (length bound,
 *   CRC) and the log is truncated at the first bad one; later segments are removed. Each cut is logged as one
 *   structured warning `{topic, partition, from, to, bytes, reason, segment}` and returned, so nothing is ever
 *   skipped silently.
 * - The marker is removed before the partition accepts writes.
 */
import type { Logger } from 'pino';
import { StorageError } from '../../sdk/errors.js';
import { checkRecord, describeRecordCheck, RECORD_HEADER_SIZE, RecordCheck } from '../../sdk/protocol/record.js';
import type { RecordCheckFailure } from '../../sdk/protocol/record.js';
import type { FileIO } from './file-io.js';
import { isErrno, joinPath, readFully } from './file-io.js';
import { CLEAN_SHUTDOWN_FILE, parseSegmentFileName, readStateFile } from './segment-files.js';

/** One range of bytes removed by recovery. */
export interface RecoveryCut {
  readonly topic: string;
  readonly partition: number;
  /** Log offsets of the removed bytes: `[from, to)`. */
  readonly from: number;
  readonly to: number;
  readonly bytes: number;
  readonly reason: string;
  /** Segment file the bytes were in. */
  readonly segment: string;
}

export interface LoadedSegment {
  readonly start: number;
  readonly size: number;
  readonly path: string;
}

export interface PartitionRecovery {
  readonly segments: LoadedSegment[];
  readonly cuts: RecoveryCut[];
  /** True when a clean-shutdown marker matched and no scan was needed. */
  readonly clean: boolean;
  /** Where the scan started (undefined when clean). */
  readonly scannedFrom: number | undefined;
  readonly scannedBytes: number;
  readonly scannedRecords: number;
  /** Start offset to use when the directory holds no segment. */
  readonly emptyStart: number;
}

export interface RecoverOptions {
  readonly io: FileIO;
  readonly dir: string;
  readonly topic: string;
  readonly partition: number;
  readonly maxMessageSize: number;
  readonly logger: Logger;
  /**
   * The partition's durable end from the recovery-point checkpoint; undefined when the checkpoint is missing,
   * damaged or does not list the partition (the whole log is then scanned).
   */
  readonly checkpoint: number | undefined;
}

const SCAN_WINDOW = 1 << 20;

export async function recoverPartitionDir(o: RecoverOptions): Promise<PartitionRecovery> {
  const { io, dir, logger } = o;
  const names = await io.readdir(dir);
  const found: { start: number; size: number; path: string }[] = [];
  for (const name of names) {
    if (name.endsWith('.tmp')) { await io.unlink(joinPath(dir, name)); continue; }
    const start = parseSegmentFileName(name);
    if (start === undefined) continue;
    const path = joinPath(dir, name);
    found.push({ start, size: (await io.stat(path)).size, path });
  }
  found.sort((a, b) => a.start - b.start);
  for (let i = 0; i + 1 < found.length; i++) {
    const a = found[i]!;
    const b = found[i + 1]!;
    if (a.start + a.size !== b.start) {
      throw new StorageError(`segments of ${dir} are not contiguous: ${a.path} starts at ${a.start} and has ${a.size} ` +
        `bytes (ends at ${a.start + a.size}) but the next file is ${b.path} (starts at ${b.start}); refusing to open`);
    }
  }
  const checkpoint = o.checkpoint;
  const marker = await readStateFile(io, dir, CLEAN_SHUTDOWN_FILE).catch(() => undefined);
  const last = found[found.length - 1];
  const end = last === undefined ? 0 : last.start + last.size;
  if (marker !== undefined || names.includes(CLEAN_SHUTDOWN_FILE)) {
    await io.unlink(joinPath(dir, CLEAN_SHUTDOWN_FILE));
    await io.fsyncDir(dir);
  }
  const emptyStart = last === undefined ? (checkpoint ?? 0) : 0;
  if (marker !== undefined && marker === end) {
    return { segments: found, cuts: [], clean: true, scannedFrom: undefined, scannedBytes: 0, scannedRecords: 0, emptyStart };
  }
  if (found.length === 0) {
    return { segments: found, cuts: [], clean: false, scannedFrom: undefined, scannedBytes: 0, scannedRecords: 0, emptyStart };
  }
  let scanFrom = checkpoint ?? found[0]!.start;
  if (marker !== undefined) {
    logger.warn({ topic: o.topic, partition: o.partition, marker, end }, 'clean-shutdown marker does not match the files: scanning');
  }
  if (scanFrom < found[0]!.start) scanFrom = found[0]!.start;
  if (scanFrom > end) {
    logger.warn({ topic: o.topic, partition: o.partition, checkpoint, end },
      'recovery point is beyond the end of the log: durable data is missing; scanning the last segment');
    scanFrom = lastNonEmpty(found).start;
  }
  return scan(o, found, scanFrom, emptyStart);
}

function lastNonEmpty(segs: LoadedSegment[]): LoadedSegment {
  for (let i = segs.length - 1; i >= 0; i--) if (segs[i]!.size > 0) return segs[i]!;
  return segs[0]!;
}

async function scan(o: RecoverOptions, found: { start: number; size: number; path: string }[], scanFrom: number,
  emptyStart: number): Promise<PartitionRecovery> {
  const cuts: RecoveryCut[] = [];
  let scannedBytes = 0;
  let scannedRecords = 0;
  const buf = Buffer.allocUnsafe(Math.max(SCAN_WINDOW, o.maxMessageSize + RECORD_HEADER_SIZE));
  let first = found.findIndex((s) => scanFrom < s.start + s.size || s.start + s.size === scanFrom);
  if (first < 0) first = found.length - 1;
  for (let i = first; i < found.length; i++) {
    const seg = found[i]!;
    const fd = await o.io.open(seg.path, 'r+');
    try {
      let pos = i === first ? scanFrom - seg.start : 0;
      let bufStart = pos;
      let bufLen = 0;
      let bad: RecordCheckFailure | undefined;
      while (pos < seg.size) {
        const at = pos - bufStart;
        let r = checkRecord(buf, at, bufLen, o.maxMessageSize);
        if ((r === RecordCheck.INCOMPLETE_HEADER || r === RecordCheck.INCOMPLETE_DATA) && bufStart + bufLen < seg.size) {
          // The record runs past the window: refill from the record's start and check again.
          // buf holds maxMessageSize + header, so any record with a valid length fits after the refill.
          bufStart = pos;
          bufLen = await readFully(o.io, fd, buf, Math.min(buf.length, seg.size - pos), pos);
          r = checkRecord(buf, 0, bufLen, o.maxMessageSize);
        }
        if (r < 0) { bad = r as RecordCheckFailure; break; }
        pos += r;
        scannedBytes += r;
        scannedRecords++;
      }
      if (bad !== undefined) {
        const reason = bad === RecordCheck.INCOMPLETE_HEADER || bad === RecordCheck.INCOMPLETE_DATA
          ? `torn tail (${describeRecordCheck(bad)})` : describeRecordCheck(bad);
        cuts.push(logCut(o, seg.start + pos, seg.start + seg.size, reason, seg.path));
        await o.io.ftruncate(fd, pos);
        found[i] = { ...seg, size: pos };
        for (const later of found.splice(i + 1)) {
          cuts.push(logCut(o, later.start, later.start + later.size, `follows a bad record at ${seg.start + pos}`, later.path));
          await o.io.unlink(later.path);
        }
        await o.io.fsyncDir(o.dir);
      }
      // Bytes that survived a crash may sit only in the page cache; make them durable before anyone reads them.
      await o.io.fdatasync(fd);
    } finally { await o.io.close(fd); }
  }
  return { segments: found, cuts, clean: false, scannedFrom: scanFrom, scannedBytes, scannedRecords, emptyStart };
}

function logCut(o: RecoverOptions, from: number, to: number, reason: string, segment: string): RecoveryCut {
  const cut: RecoveryCut = { topic: o.topic, partition: o.partition, from, to, bytes: to - from, reason, segment };
  o.logger.warn(cut, 'recovery cut bytes from the log');
  return cut;
}

/** True if `e` says the file is gone (used by callers tolerating concurrent deletion). */
export function isMissing(e: unknown): boolean {
  return isErrno(e, 'ENOENT');
}
