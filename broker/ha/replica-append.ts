/**
 * Putting one of the master's records at a known offset of a slave's local log. Both ways a record reaches a slave
 * use it: the pull loop (partition-replicator.ts, records of a fetched window) and the master's `sync` pushes
 * (sync-handler.ts). Since the two run side by side, a record may arrive twice, and the second arrival must find the
 * first one in place:
 *
 * | master's offset vs local end | what happens |
 * |---|---|
 * | equal | appended with the master's msgId, flag and CRC: the stored record is byte-identical to the master's |
 * | below | nothing written; once the local record's header is readable (group commit: after its fsync), its 20 bytes must equal the master's: "present", else {@link ReplicaDivergenceError} |
 * | above | nothing written: "ahead", the caller waits for the gap to be filled (or fails) |
 */
import { ChecksumMismatchError, StorageError } from '../../sdk/errors.js';
import { NO_CHECKSUM } from '../../sdk/protocol/commands.js';
import { crc32Masked, idToDecimal, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import type { PartitionLog } from '../store/partition-log.js';

/** One record of the master: its header fields and DATA. */
export interface ReplicaRecord {
  readonly idHi: number;
  readonly idLo: number;
  readonly flag: number;
  /** The record's DATA (attribute + payload), stored verbatim. */
  readonly data: Buffer;
  /** CRC32(data) & 0x7fffffff, already checked against `data` (see {@link pushedCrc}). */
  readonly crc: number;
}

/** What {@link replicaAppend} did synchronously; "present" comes as a promise. */
export const Placement = {
  APPENDED: 'appended',
  AHEAD: 'ahead',
  PRESENT: 'present',
} as const;
export type Placement = (typeof Placement)[keyof typeof Placement];

/**
 * Thrown when the slave holds a different record at an offset where the master has one: the two histories differ
 * (e.g. a node that was master before and kept records the new master never had). Nothing was written.
 */
export class ReplicaDivergenceError extends StorageError {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    /** The local record's msgId (decimal), or a description when no whole header is there. */
    readonly localId: string,
    readonly masterId: string,
    detail: string,
  ) {
    super(`replica of ${topic}-${partition} diverges from the master at offset ${offset}: local record ${localId}, ` +
      `master's record ${masterId} (${detail}); nothing written`);
  }
}

/**
 * The CRC of pushed DATA, checked against the checksum the master sent (unless {@link NO_CHECKSUM}). Throws
 * ChecksumMismatchError: the bytes were damaged on the way and must not be stored.
 */
export function pushedCrc(data: Buffer, checksum: number): number {
  const crc = crc32Masked(data);
  if (checksum !== NO_CHECKSUM && checksum !== crc) throw new ChecksumMismatchError(checksum, crc);
  return crc;
}

/**
 * Puts the master's record `rec` at `offset` of `log` (see the file comment). "appended" and "ahead" are decided
 * synchronously (an append happens before this returns, so callers keep their order); for an offset below the local
 * end the answer is a promise of "present", rejected with {@link ReplicaDivergenceError} when the local record
 * differs, or with the store's error when the record never became readable. Throws the store's append errors
 * (DiskFullError, FsyncFailedError, ShuttingDownError, MessageTooLargeError); nothing is written then.
 */
export function replicaAppend(log: PartitionLog, offset: number, rec: ReplicaRecord): 'appended' | 'ahead' | Promise<'present'> {
  const end = log.endOffset;
  if (offset === end) {
    log.append(rec.idHi, rec.idLo, rec.flag, rec.data, rec.crc);
    return Placement.APPENDED;
  }
  if (offset > end) return Placement.AHEAD;
  // `rec` may be a reused object: keep what the comparison needs.
  const want = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
  want.writeInt32BE(rec.data.length, 0);
  want.writeInt32BE(rec.crc, 4);
  want.writeUInt32BE(rec.idHi >>> 0, 8);
  want.writeUInt32BE(rec.idLo >>> 0, 12);
  want.writeInt32BE(rec.flag, 16);
  return comparePresent(log, offset, want);
}

async function comparePresent(log: PartitionLog, offset: number, want: Buffer): Promise<'present'> {
  if (offset + RECORD_HEADER_SIZE > log.readableEnd) {
    // Appended but not readable yet (group commit: before its fsync): wait for the store.
    const err = await new Promise<Error | null>((resolve) => log.whenStored(resolve));
    if (err !== null) throw err;
    if (offset + RECORD_HEADER_SIZE > log.readableEnd) {
      throw new StorageError(`record at ${offset} of ${log.topic}-${log.partition} is not stored locally ` +
        `(readable end ${log.readableEnd})`, { retriable: true });
    }
  }
  const have = await log.read(offset, RECORD_HEADER_SIZE);
  if (have.length === RECORD_HEADER_SIZE && have.equals(want)) return Placement.PRESENT;
  const masterId = idToDecimal(want.readUInt32BE(8), want.readUInt32BE(12));
  if (have.length < RECORD_HEADER_SIZE) {
    throw new ReplicaDivergenceError(log.topic, log.partition, offset, `(none: ${have.length} header bytes before a segment end)`,
      masterId, 'no local record starts there');
  }
  const localId = idToDecimal(have.readUInt32BE(8), have.readUInt32BE(12));
  const diff: string[] = [];
  if (have.readInt32BE(0) !== want.readInt32BE(0)) diff.push(`length ${have.readInt32BE(0)} vs ${want.readInt32BE(0)}`);
  if (localId !== masterId) diff.push('different msgId');
  if (have.readInt32BE(4) !== want.readInt32BE(4)) diff.push('different checksum');
  if (have.readInt32BE(16) !== want.readInt32BE(16)) diff.push(`flag ${have.readInt32BE(16)} vs ${want.readInt32BE(16)}`);
  throw new ReplicaDivergenceError(log.topic, log.partition, offset, localId, masterId, diff.join(', '));
}
