/**
 * Opening a journal directory: delete compaction temp files (a crash before their rename: the segment they were
 * replacing is intact), scan every segment (journal-format.ts), cut torn tails, skip damaged records, and rebuild
 * the index in seq order. Everything cut or skipped is logged and reported.
 */
import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { JournalRecordTypes, scanJournalSegment } from './journal-format.js';
import {
  COMPACT_SUFFIX, parseSegmentFileName, Segment, segmentFileName, SegmentFile, type RecordLocation,
} from './journal-segment.js';
import { syncDirectory } from './atomic-file.js';

/** A byte range open() cut or skipped. */
export interface JournalCut {
  readonly segment: string;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
  /** The record's seq, when its header was intact. */
  readonly seq?: number;
}

/** What open() found and cut. */
export interface JournalRecoveryReport {
  readonly segments: number;
  /** Valid records scanned (puts and removes, live or not). */
  readonly records: number;
  /** Torn tails cut off (the file was truncated at `from`). */
  readonly tornTails: readonly JournalCut[];
  /** Damaged records skipped in the middle of a segment (left in place as dead bytes). */
  readonly damaged: readonly JournalCut[];
  /** Compaction temp files deleted. */
  readonly removedTempFiles: readonly string[];
}

export interface LoadedJournal {
  readonly index: Map<number, RecordLocation>;
  readonly segments: Segment[];
  readonly nextSeq: number;
  readonly report: JournalRecoveryReport;
}

/** Scans `dir` (which exists) and returns its state; see the module comment. */
export async function loadJournal(dir: string, fsync: boolean, logger: Logger): Promise<LoadedJournal> {
  const names = (await readdir(dir)).sort();
  const removedTempFiles: string[] = [];
  for (const name of names) {
    if (!name.endsWith(COMPACT_SUFFIX)) continue;
    await unlink(join(dir, name));
    removedTempFiles.push(name);
    logger.warn({ dir, file: name }, 'journal: deleted the temp file of an interrupted compaction');
  }
  const bases = names.map(parseSegmentFileName).filter((b): b is number => b !== undefined).sort((a, b) => a - b);

  let index = new Map<number, RecordLocation>();
  const segments: Segment[] = [];
  const tornTails: JournalCut[] = [];
  const damaged: JournalCut[] = [];
  let records = 0;
  let maxSeq = -1;
  let lastInserted = -1;
  let ordered = true;
  try {
    for (const base of bases) {
      const seg = new Segment(dir, base, new SegmentFile(await open(join(dir, segmentFileName(base)), 'r+')));
      segments.push(seg);
      const data = await seg.file.handle.readFile();
      const scan = scanJournalSegment(data);
      for (const d of scan.damaged) {
        const cut: JournalCut = { segment: seg.name, ...d };
        damaged.push(cut);
        if (d.seq !== undefined) maxSeq = Math.max(maxSeq, d.seq);
        logger.warn({ dir, ...cut, bytes: d.to - d.from }, 'journal: skipped a damaged record');
      }
      if (scan.validEnd < data.length) {
        const cut: JournalCut = { segment: seg.name, from: scan.validEnd, to: data.length, reason: scan.tailReason ?? '' };
        tornTails.push(cut);
        logger.warn({ dir, ...cut, bytes: data.length - scan.validEnd }, 'journal: cut a torn tail');
        await seg.file.handle.truncate(scan.validEnd);
        if (fsync) await seg.file.handle.datasync();
      }
      seg.size = scan.validEnd;
      records += scan.records.length;
      for (const r of scan.records) {
        maxSeq = Math.max(maxSeq, r.seq);
        const old = index.get(r.seq);
        if (old !== undefined) {
          old.seg.liveCount--;
          old.seg.liveBytes -= old.size;
        }
        if (r.type === JournalRecordTypes.REMOVE) {
          seg.removes.push(r.seq);
          index.delete(r.seq);
          continue;
        }
        seg.addPhys(r.seq);
        seg.liveCount++;
        seg.liveBytes += r.size;
        if (old !== undefined) {
          old.seg = seg;
          old.pos = r.pos;
          old.size = r.size;
        } else {
          index.set(r.seq, { seg, pos: r.pos, size: r.size });
          if (r.seq < lastInserted) ordered = false;
          lastInserted = r.seq;
        }
      }
    }
    // An update whose older copy was compacted away comes first in a later segment: restore seq order.
    if (!ordered) index = new Map([...index].sort((a, b) => a[0] - b[0]));
    if (segments.length === 0) {
      segments.push(new Segment(dir, 0, new SegmentFile(await open(join(dir, segmentFileName(0)), 'wx+'))));
      if (fsync) await syncDirectory(dir);
    }
  } catch (e) {
    for (const s of segments) await s.file.retire();
    throw e;
  }
  const last = segments[segments.length - 1]!;
  const nextSeq = Math.max(maxSeq + 1, last.baseSeq);
  if (tornTails.length > 0 || damaged.length > 0 || removedTempFiles.length > 0) {
    logger.warn({ dir, segments: segments.length, live: index.size, tornTails: tornTails.length,
      damaged: damaged.length }, 'journal recovered');
  }
  return {
    index, segments, nextSeq,
    report: { segments: segments.length, records, tornTails, damaged, removedTempFiles },
  };
}
