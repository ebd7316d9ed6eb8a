/** Reading a live partition log's records back, header fields and DATA, for tests that compare logs or replay them. */
import { checkRecord, joinId, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import type { PartitionLog } from '../../broker/store/partition-log.js';

export interface LogRecord {
  readonly offset: number;
  readonly msgId: bigint;
  readonly flag: number;
  readonly crc: number;
  readonly data: Buffer;
}

/** The records of `log` from `from` (a record boundary) to its readable end. */
export async function recordsOf(log: PartitionLog, from = log.startOffset): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let offset = from;
  while (offset < log.readableEnd) {
    const buf = await log.read(offset, 1024 * 1024);
    let pos = 0;
    for (let size = checkRecord(buf, 0, buf.length, 1 << 20); size > 0; size = checkRecord(buf, pos, buf.length, 1 << 20)) {
      out.push({ offset: offset + pos, msgId: joinId(buf.readUInt32BE(pos + 8), buf.readUInt32BE(pos + 12)),
        flag: buf.readInt32BE(pos + 16), crc: buf.readInt32BE(pos + 4),
        data: Buffer.from(buf.subarray(pos + RECORD_HEADER_SIZE, pos + size)) });
      pos += size;
    }
    offset += pos;
  }
  return out;
}
