/**
 * Compaction of one sealed journal segment: copy its live records, and the remove records still needed, into
 * `<segment>.compact`, fsync it, rename it over the segment, fsync the directory. A crash before the rename leaves
 * the old segment intact (open() deletes the temp file); after it, the new one is complete and durable.
 *
 * A remove record is needed while an older segment still holds a copy of the record it removes: dropping it then
 * would bring the record back at the next open.
 */
import { open, rename, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { JOURNAL_HEADER_SIZE, JournalRecordTypes, scanJournalSegment } from './journal-format.js';
import { COMPACT_SUFFIX, Segment, SegmentFile, writeFully, type RecordLocation } from './journal-segment.js';
import { syncDirectory } from './atomic-file.js';

/** Named points at the journal's dangerous boundaries; a test hook may throw there to simulate a crash. */
export const JournalFailpoints = {
  BEFORE_WRITE: 'journal.beforeWrite',
  BEFORE_FSYNC: 'journal.beforeFsync',
  BEFORE_COMPACT_RENAME: 'journal.beforeCompactRename',
  AFTER_COMPACT_RENAME: 'journal.afterCompactRename',
  BEFORE_SEGMENT_UNLINK: 'journal.beforeSegmentUnlink',
} as const;
export type JournalFailpoint = (typeof JournalFailpoints)[keyof typeof JournalFailpoints];

/** What compaction needs from the journal. */
export interface CompactionContext {
  readonly dir: string;
  readonly index: Map<number, RecordLocation>;
  readonly logger: Logger;
  hit(name: JournalFailpoint, context: string): Promise<void>;
}

/** True when some remove record of `seg` names a record that a segment in `older` still holds. */
export function holdsNeededRemoves(seg: Segment, older: readonly Segment[]): boolean {
  if (older.length === 0) return false;
  for (const seq of seg.removes) {
    for (const d of older) if (d.holds(seq)) return true;
  }
  return false;
}

/**
 * Rewrites `seg` with only what must be kept. Returns false (and changes nothing) when nothing is left to keep:
 * the caller then deletes the segment instead.
 */
export async function compactSegment(ctx: CompactionContext, seg: Segment, older: readonly Segment[]): Promise<boolean> {
  const file = seg.file;
  const data = await file.read(0, seg.size);
  const scan = scanJournalSegment(data);
  const keep: { oldPos: number; size: number; seq: number; put: boolean }[] = [];
  let bytes = 0;
  for (const r of scan.records) {
    if (r.type === JournalRecordTypes.PUT) {
      const loc = ctx.index.get(r.seq);
      if (loc === undefined || loc.seg !== seg || loc.pos !== r.pos) continue;
    } else if (!older.some((d) => d.holds(r.seq))) {
      continue;
    }
    keep.push({ oldPos: r.pos, size: r.size, seq: r.seq, put: r.type === JournalRecordTypes.PUT });
    bytes += r.size;
  }
  if (keep.length === 0) return false;

  const out = Buffer.allocUnsafe(bytes);
  let pos = 0;
  const newPos: number[] = [];
  for (const k of keep) {
    data.copy(out, pos, k.oldPos, k.oldPos + k.size);
    newPos.push(pos);
    pos += k.size;
  }
  const tmp = seg.path + COMPACT_SUFFIX;
  const handle = await open(tmp, 'w+');
  try {
    await writeFully(handle, out, 0);
    await handle.datasync();
    await ctx.hit(JournalFailpoints.BEFORE_COMPACT_RENAME, tmp);
    await rename(tmp, seg.path);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDirectory(ctx.dir);
  await ctx.hit(JournalFailpoints.AFTER_COMPACT_RENAME, seg.path);

  // The swap is synchronous, so a reader sees either the old file with old positions or the new with new ones.
  const puts: number[] = [];
  const removes: number[] = [];
  for (let i = 0; i < keep.length; i++) {
    const k = keep[i]!;
    if (!k.put) {
      removes.push(k.seq);
      continue;
    }
    puts.push(k.seq);
    const loc = ctx.index.get(k.seq);
    // Removed or updated while we copied: the copy stays as a dead (but physically present) record.
    if (loc !== undefined && loc.seg === seg && loc.pos === k.oldPos) {
      ctx.index.set(k.seq, { seg, pos: newPos[i]!, size: k.size });
    }
  }
  const before = seg.size;
  seg.file = new SegmentFile(handle);
  seg.size = bytes;
  seg.setPhys(puts);
  seg.removes = removes;
  seg.keptRemoveBytes = removes.length * JOURNAL_HEADER_SIZE;
  await file.retire();
  ctx.logger.info({ segment: seg.path, before, after: bytes, kept: keep.length }, 'journal segment compacted');
  return true;
}

/** What the maintenance pass needs from the journal. */
export interface MaintenanceHost {
  readonly ctx: CompactionContext;
  /** Oldest first; the last one is being written and is never touched here. */
  readonly segments: Segment[];
  readonly options: { readonly compactMinBytes: number; readonly compactRatio: number };
  readonly stats: { compactions: number; deletedSegments: number };
  isClosed(): boolean;
  /** Asks the writer to seal the segment being written (it runs maintenance again after the roll). */
  requestRoll(): void;
}

/**
 * One maintenance pass: delete sealed segments with nothing to keep; then, when the journal holds at least
 * `compactMinBytes` and its dead bytes exceed `compactRatio` times its live bytes, compact every sealed segment
 * that is mostly dead (oldest first, so remove records are dropped only after the records they remove).
 */
export async function maintainJournal(host: MaintenanceHost): Promise<void> {
  const segs = host.segments;
  for (let i = 0; i < segs.length - 1 && !host.isClosed();) {
    const seg = segs[i]!;
    if (seg.liveCount === 0 && !holdsNeededRemoves(seg, segs.slice(0, i))) await dropSegment(host, seg);
    else i++;
  }
  let total = 0;
  let live = 0;
  for (const s of segs) {
    total += s.size;
    live += s.size - s.deadBytes;
  }
  const { compactMinBytes, compactRatio } = host.options;
  if (host.isClosed() || total < compactMinBytes || total - live <= compactRatio * live) return;
  const active = segs[segs.length - 1]!;
  // Most garbage sits in the segment being written: seal it so that the next pass can compact it.
  if (active.deadBytes > active.size - active.deadBytes && active.deadBytes * 2 >= total - live) host.requestRoll();
  for (let i = 0; i < segs.length - 1 && !host.isClosed(); i++) {
    const seg = segs[i]!;
    if (seg.deadBytes <= seg.size - seg.deadBytes) continue;
    if (await compactSegment(host.ctx, seg, segs.slice(0, i))) {
      host.stats.compactions++;
    } else {
      await dropSegment(host, seg);
      i--;
    }
  }
}

async function dropSegment(host: MaintenanceHost, seg: Segment): Promise<void> {
  await host.ctx.hit(JournalFailpoints.BEFORE_SEGMENT_UNLINK, seg.path);
  const i = host.segments.indexOf(seg);
  if (i >= 0) host.segments.splice(i, 1);
  await seg.file.retire();
  await unlink(seg.path);
  // Later decisions (dropping remove records) rely on this segment being gone for good.
  await syncDirectory(host.ctx.dir);
  host.stats.deletedSegments++;
  host.ctx.logger.info({ segment: seg.path }, 'journal segment deleted: nothing live');
}
