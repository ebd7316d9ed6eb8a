/**
 * The recovery-point checkpoint: one file per data path, `<dataPath>/recovery-point.checkpoint`, recording for
 * every partition of that data path the end offset known to be durable. An unclean restart scans only the records
 * after it. One file per data path (as Kafka's `recovery-point-offset-checkpoint`) rather than one per partition,
 * because its cost (two fsyncs and a rename) then stays flat as partitions are added instead of competing with the
 * group-commit fsyncs.
 *
 * Grammar (ASCII text, every line ends with `\n`):
 *
 * ```
 * MQRP 1                      magic, version
 * <count>                     number of entry lines
 * <partition dir> <offset>    count times: e.g. `orders-eu-3 1048576` (split at the last space)
 * crc32 <8 lowercase hex>     CRC32 of every byte before this line
 * ```
 *
 * A file that does not match exactly is damaged: the reader throws StorageError and the store scans whole logs.
 */
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import { StorageError } from '../../sdk/errors.js';
import type { Failpoints } from './failpoints.js';
import type { FileIO } from './file-io.js';
import { joinPath, readSmallFile } from './file-io.js';
import { partitionDirName, replaceFileAtomically } from './segment-files.js';

export const RECOVERY_POINT_FILE = 'recovery-point.checkpoint';
const HEADER = 'MQRP 1';
const CRC_LINE = /^crc32 [0-9a-f]{8}$/;
const DIGITS = /^\d{1,16}$/;

/** What the checkpoint needs to know of a partition (PartitionLog satisfies it). */
export interface CheckpointedPartition {
  readonly topic: string;
  readonly partition: number;
  readonly durableEnd: number;
  readonly config: { readonly dataPath: string };
}

export interface RecoveryPointFileOptions {
  readonly io: FileIO;
  /** Every data path of the store: each gets a file, an empty one when it holds no partition. */
  readonly dataPaths: readonly string[];
  readonly logger: Logger;
  readonly failpoints?: Failpoints | undefined;
}

/**
 * Writes the checkpoint of each data path, one write at a time, skipping a data path whose durable offsets have
 * not changed since its last successful write.
 */
export class RecoveryPointFile {
  private readonly written = new Map<string, Map<CheckpointedPartition, number>>();
  private running: Promise<void> | null = null;

  constructor(private readonly o: RecoveryPointFileOptions) {}

  /** True while a write is in progress (the periodic job then skips its turn). */
  get writing(): boolean {
    return this.running !== null;
  }

  /**
   * Waits for a write in progress, then writes every data path whose offsets changed. Each failure is logged; the
   * promise rejects with the first one once every data path has been tried.
   */
  async write(partitions: Iterable<CheckpointedPartition>): Promise<void> {
    while (this.running !== null) await this.running.catch(() => undefined);
    const run = this.writeChanged(partitions);
    this.running = run;
    try { await run; } finally { this.running = null; }
  }

  private async writeChanged(partitions: Iterable<CheckpointedPartition>): Promise<void> {
    // Offsets are taken now, before any await: each is durable already, so the file never claims more.
    const byPath = new Map<string, Map<CheckpointedPartition, number>>();
    for (const dataPath of this.o.dataPaths) byPath.set(dataPath, new Map());
    for (const p of partitions) {
      let points = byPath.get(p.config.dataPath);
      if (points === undefined) { points = new Map(); byPath.set(p.config.dataPath, points); }
      points.set(p, p.durableEnd);
    }
    let failed = false;
    let firstError: unknown;
    for (const [dataPath, points] of byPath) {
      if (sameOffsets(this.written.get(dataPath), points)) continue;
      const entries: [string, number][] = [];
      for (const [p, offset] of points) entries.push([partitionDirName(p.topic, p.partition), offset]);
      try {
        await replaceFileAtomically(this.o.io, dataPath, RECOVERY_POINT_FILE, encodeRecoveryPoints(entries), this.o.failpoints);
        this.written.set(dataPath, points);
      } catch (e) {
        this.o.logger.warn({ dataPath, err: e }, 'recovery-point checkpoint not written');
        if (!failed) { failed = true; firstError = e; }
      }
    }
    if (failed) throw firstError;
  }
}

function sameOffsets(a: Map<CheckpointedPartition, number> | undefined, b: Map<CheckpointedPartition, number>): boolean {
  if (a === undefined || a.size !== b.size) return false;
  for (const [p, offset] of b) if (a.get(p) !== offset) return false;
  return true;
}

/** The file's bytes for `entries` (partition directory name, durable end offset). */
export function encodeRecoveryPoints(entries: readonly (readonly [string, number])[]): Buffer {
  let text = `${HEADER}\n${entries.length}\n`;
  for (const [name, offset] of entries) text += `${name} ${offset}\n`;
  const body = Buffer.from(text, 'utf8');
  const crc = (crc32(body) >>> 0).toString(16).padStart(8, '0');
  return Buffer.concat([body, Buffer.from(`crc32 ${crc}\n`, 'latin1')]);
}

/** Partition directory name → durable end offset. Throws StorageError naming `path` and the defect. */
export function decodeRecoveryPoints(buf: Buffer, path: string): Map<string, number> {
  const damaged = (why: string): StorageError =>
    new StorageError(`damaged recovery-point checkpoint ${path} (${buf.length} bytes): ${why}`);
  if (buf.length === 0 || buf[buf.length - 1] !== 0x0a) throw damaged('does not end with a newline');
  const crcAt = buf.lastIndexOf(0x0a, buf.length - 2) + 1;
  const crcLine = buf.toString('latin1', crcAt, buf.length - 1);
  if (crcAt === 0 || !CRC_LINE.test(crcLine)) throw damaged('no crc32 line at the end');
  if ((crc32(buf.subarray(0, crcAt)) >>> 0) !== Number.parseInt(crcLine.slice(6), 16)) throw damaged('CRC mismatch');
  const lines = buf.toString('utf8', 0, crcAt - 1).split('\n');
  if (lines[0] !== HEADER) throw damaged(`header is "${lines[0] ?? ''}", expected "${HEADER}"`);
  const countText = lines[1] ?? '';
  if (!DIGITS.test(countText)) throw damaged(`bad entry count "${countText}"`);
  const count = Number(countText);
  if (lines.length !== count + 2) throw damaged(`${lines.length - 2} entry lines, header says ${count}`);
  const out = new Map<string, number>();
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    const sp = line.lastIndexOf(' ');
    const offsetText = line.slice(sp + 1);
    if (sp <= 0 || !DIGITS.test(offsetText) || !Number.isSafeInteger(Number(offsetText))) {
      throw damaged(`bad entry line ${i + 1}: "${line}"`);
    }
    const name = line.slice(0, sp);
    if (out.has(name)) throw damaged(`${name} listed twice`);
    out.set(name, Number(offsetText));
  }
  return out;
}

/** The checkpoint of `dataPath`; undefined if there is none. Throws StorageError if it is damaged. */
export async function readRecoveryPoints(io: FileIO, dataPath: string): Promise<Map<string, number> | undefined> {
  const path = joinPath(dataPath, RECOVERY_POINT_FILE);
  const buf = await readSmallFile(io, path);
  return buf === undefined ? undefined : decodeRecoveryPoints(buf, path);
}
