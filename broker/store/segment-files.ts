/**
 * On-disk names of the store, exactly as MetaQ 1.4 lays them out, plus our two state files:
 *
 * ```
 * <dataPath>/<topic>-<partition>/00000000000000000000.meta   segment starting at byte offset 0
 * <dataPath>/<topic>-<partition>/00000000000001048576.meta   next segment (name = its start offset)
 * <dataPath>/<topic>-<partition>/clean.shutdown               ours: written by close(), removed at open
 * <dataPath>/recovery-point.checkpoint                        ours: every partition's durable end offset
 * ```
 *
 * `clean.shutdown` is 20 bytes: magic (4 ASCII), version uint32, end offset as two uint32 halves, CRC32 of the
 * first 16 bytes. The recovery-point checkpoint is one file per data path (as Kafka's
 * `recovery-point-offset-checkpoint`), so that its cost does not grow with the number of partitions; its format
 * is in recovery-point-file.ts. Both are replaced atomically: temp file, fdatasync, rename, directory fsync.
 * A `flush.checkpoint` left in a partition directory by an older version is ignored.
 */
import { crc32 } from 'node:zlib';
import { StorageError } from '../../sdk/errors.js';
import type { FileIO } from './file-io.js';
import { joinPath, readSmallFile } from './file-io.js';
import type { Failpoints } from './failpoints.js';
import { FailpointNames } from './failpoints.js';

export const SEGMENT_SUFFIX = '.meta';
export const CLEAN_SHUTDOWN_FILE = 'clean.shutdown';
const STATE_MAGIC = { [CLEAN_SHUTDOWN_FILE]: 'MQCS' } as const;
export type StateFile = keyof typeof STATE_MAGIC;
const STATE_SIZE = 20;
const TWO_32 = 0x1_0000_0000;

/** `00000000000000001024.meta` for start offset 1024. */
export function segmentFileName(start: number): string {
  return String(start).padStart(20, '0') + SEGMENT_SUFFIX;
}

/** The start offset named by a segment file, or undefined if the name is not a segment name. */
export function parseSegmentFileName(name: string): number | undefined {
  if (!name.endsWith(SEGMENT_SUFFIX)) return undefined;
  const digits = name.slice(0, -SEGMENT_SUFFIX.length);
  if (!/^\d{20}$/.test(digits)) return undefined;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `{topic, partition}` from a partition directory name, split at the LAST `-` (topics may contain `-`). */
export function parsePartitionDirName(name: string): { topic: string; partition: number } | undefined {
  const i = name.lastIndexOf('-');
  if (i <= 0 || i === name.length - 1) return undefined;
  const digits = name.slice(i + 1);
  if (!/^\d+$/.test(digits)) return undefined;
  return { topic: name.slice(0, i), partition: Number(digits) };
}

export function partitionDirName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/** Reads a state file; undefined if it is missing, throws StorageError if it is damaged. */
export async function readStateFile(io: FileIO, dir: string, name: StateFile): Promise<number | undefined> {
  const buf = await readSmallFile(io, joinPath(dir, name));
  if (buf === undefined) return undefined;
  if (buf.length !== STATE_SIZE || buf.toString('latin1', 0, 4) !== STATE_MAGIC[name] ||
      buf.readUInt32BE(4) !== 1 || ((crc32(buf.subarray(0, 16)) >>> 0) !== buf.readUInt32BE(16))) {
    throw new StorageError(`damaged state file ${joinPath(dir, name)} (${buf.length} bytes)`);
  }
  return buf.readUInt32BE(8) * TWO_32 + buf.readUInt32BE(12);
}

/** Atomically replaces a state file: temp file + fdatasync + rename + directory fsync. */
export async function writeStateFile(io: FileIO, dir: string, name: StateFile, endOffset: number,
  failpoints?: Failpoints): Promise<void> {
  const buf = Buffer.alloc(STATE_SIZE);
  buf.write(STATE_MAGIC[name], 0, 'latin1');
  buf.writeUInt32BE(1, 4);
  buf.writeUInt32BE(Math.floor(endOffset / TWO_32), 8);
  buf.writeUInt32BE(endOffset >>> 0, 12);
  buf.writeUInt32BE(crc32(buf.subarray(0, 16)) >>> 0, 16);
  await replaceFileAtomically(io, dir, name, buf, failpoints);
}

/** Writes `<dir>/<name>.tmp`, fdatasyncs it, renames it over `<dir>/<name>` and fsyncs the directory. */
export async function replaceFileAtomically(io: FileIO, dir: string, name: string, content: Buffer,
  failpoints?: Failpoints): Promise<void> {
  const tmp = joinPath(dir, `${name}.tmp`);
  const fd = await io.open(tmp, 'w');
  try {
    await io.writev(fd, [content], 0);
    await io.fdatasync(fd);
  } finally { await io.close(fd); }
  if (failpoints?.active === true) await failpoints.hit(FailpointNames.BEFORE_RENAME, tmp);
  await io.rename(tmp, joinPath(dir, name));
  await io.fsyncDir(dir);
}
