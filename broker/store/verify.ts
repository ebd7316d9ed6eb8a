/**
 * The offline store checker behind `metaq verify <dataDir>` (as `bbolt check`): every partition directory,
 * segment naming and contiguity, and every record's length and CRC. It only reads: nothing is modified.
 *
 * After a CRC mismatch whose length is plausible the walk continues with the next record (one flipped bit is then
 * one problem); after an impossible length it cannot find the next record and stops that segment.
 */
import { checkRecord, DEFAULT_MAX_MESSAGE_SIZE, describeRecordCheck, RECORD_HEADER_SIZE, RecordCheck } from '../../sdk/protocol/record.js';
import type { RecordCheckFailure } from '../../sdk/protocol/record.js';
import type { FileIO } from './file-io.js';
import { joinPath, NodeFileIO, readFully } from './file-io.js';
import { parsePartitionDirName, parseSegmentFileName, SEGMENT_SUFFIX } from './segment-files.js';

export interface VerifyProblem {
  readonly partitionDir: string;
  /** Segment file name, or '' for a directory-level problem. */
  readonly segmentFile: string;
  /** Byte position in the segment file (-1 when not about a position). */
  readonly position: number;
  /** Log offset (-1 when unknown). */
  readonly offset: number;
  readonly reason: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly problems: VerifyProblem[];
  readonly partitions: number;
  readonly segments: number;
  readonly records: number;
  readonly bytes: number;
}

export interface VerifyOptions {
  readonly maxMessageSize?: number;
  readonly onProgress?: (done: number, total: number, what: string) => void;
  readonly fileIO?: FileIO;
}

const WINDOW = 1 << 20;

/** Checks every partition directory under `dataPath`. */
export async function verifyDataDir(dataPath: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const io = options.fileIO ?? new NodeFileIO();
  const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const problems: VerifyProblem[] = [];
  const totals = { partitions: 0, segments: 0, records: 0, bytes: 0 };
  const dirs: string[] = [];
  for (const name of (await io.readdir(dataPath)).sort()) {
    if (parsePartitionDirName(name) !== undefined && (await io.stat(joinPath(dataPath, name))).isDirectory) dirs.push(name);
  }
  let done = 0;
  for (const name of dirs) {
    totals.partitions++;
    await verifyPartition(io, joinPath(dataPath, name), max, problems, totals);
    options.onProgress?.(++done, dirs.length, name);
  }
  return { ok: problems.length === 0, problems, ...totals };
}

async function verifyPartition(io: FileIO, dir: string, max: number, problems: VerifyProblem[],
  totals: { segments: number; records: number; bytes: number }): Promise<void> {
  const segs: { name: string; start: number; size: number }[] = [];
  for (const name of await io.readdir(dir)) {
    if (!name.endsWith(SEGMENT_SUFFIX)) continue;
    const start = parseSegmentFileName(name);
    if (start === undefined) {
      problems.push({ partitionDir: dir, segmentFile: name, position: -1, offset: -1, reason: 'bad segment file name (want 20 digits + .meta)' });
      continue;
    }
    segs.push({ name, start, size: (await io.stat(joinPath(dir, name))).size });
  }
  segs.sort((a, b) => a.start - b.start);
  for (let i = 0; i + 1 < segs.length; i++) {
    const a = segs[i]!;
    const b = segs[i + 1]!;
    if (a.start + a.size !== b.start) {
      problems.push({ partitionDir: dir, segmentFile: b.name, position: 0, offset: b.start,
        reason: `${a.start + a.size < b.start ? 'gap' : 'overlap'}: ${a.name} ends at ${a.start + a.size}, ${b.name} starts at ${b.start}` });
    }
  }
  for (const [i, s] of segs.entries()) {
    totals.segments++;
    totals.bytes += s.size;
    await verifySegment(io, dir, s, max, i === segs.length - 1, problems, totals);
  }
}

async function verifySegment(io: FileIO, dir: string, s: { name: string; start: number; size: number }, max: number,
  isLast: boolean, problems: VerifyProblem[], totals: { records: number }): Promise<void> {
  const fd = await io.open(joinPath(dir, s.name), 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.max(WINDOW, max + RECORD_HEADER_SIZE));
    let bufStart = 0;
    let bufLen = 0;
    let pos = 0;
    while (pos < s.size) {
      let r = checkRecord(buf, pos - bufStart, bufLen, max);
      if ((r === RecordCheck.INCOMPLETE_HEADER || r === RecordCheck.INCOMPLETE_DATA) && bufStart + bufLen < s.size) {
        bufStart = pos;
        bufLen = await readFully(io, fd, buf, Math.min(buf.length, s.size - pos), pos);
        r = checkRecord(buf, 0, bufLen, max);
      }
      if (r > 0) { pos += r; totals.records++; continue; }
      const code = r as RecordCheckFailure;
      const incomplete = code === RecordCheck.INCOMPLETE_HEADER || code === RecordCheck.INCOMPLETE_DATA;
      problems.push({ partitionDir: dir, segmentFile: s.name, position: pos, offset: s.start + pos,
        reason: incomplete ? `${describeRecordCheck(code)} at the end of ${isLast ? 'the last' : 'a sealed'} segment (torn tail)`
          : describeRecordCheck(code) });
      if (code !== RecordCheck.BAD_CRC) return;
      pos += RECORD_HEADER_SIZE + buf.readInt32BE(pos - bufStart);
    }
  } finally { await io.close(fd); }
}
