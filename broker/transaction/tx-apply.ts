/**
 * Appending a committed transaction's messages to the partition logs: one contiguous batch per partition, and,
 * at recovery, completing a journalled commit whose appends did not all land (only the missing records are
 * appended, found by message id after the offset the commit recorded).
 */
import { decodeMessageSet, joinId, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import type { SyncMaster } from '../ha/sync-master.js';
import type { MessageStore } from '../store/message-store.js';
import type { PartitionLog } from '../store/partition-log.js';
import type { CommitPart, TxPut } from './tx-records.js';

/** The puts of one partition, in put order. */
export interface PartitionBatch {
  readonly log: PartitionLog;
  readonly puts: TxPut[];
}

/**
 * Groups puts by partition in order of first appearance; throws the store's error (unknown topic, wrong
 * partition, shutting down) when a partition cannot be had.
 */
export function groupByPartition(store: MessageStore, puts: readonly TxPut[]): PartitionBatch[] {
  const batches = new Map<PartitionLog, TxPut[]>();
  for (const p of puts) {
    const log = store.getOrCreate(p.topic, p.partition);
    let list = batches.get(log);
    if (list === undefined) { list = []; batches.set(log, list); }
    list.push(p);
  }
  return [...batches].map(([log, list]) => ({ log, puts: list }));
}

/** The commit record's parts: each partition's end offset now, a lower bound of where its batch will start. */
export function commitParts(batches: readonly PartitionBatch[]): CommitPart[] {
  return batches.map((b) => ({ topic: b.log.topic, partition: b.log.partition, from: b.log.endOffset }));
}

/**
 * Appends every batch (synchronously, so that no other record comes between two of a batch) and resolves once all
 * are stored per each partition's flush policy, and with `sync`, on the slave too. Resolves with the errors met
 * (empty: all stored).
 */
export async function appendBatches(batches: readonly PartitionBatch[], sync: SyncMaster | null = null): Promise<Error[]> {
  const errors: Error[] = [];
  const appended: PartitionLog[] = [];
  for (const b of batches) {
    try {
      for (const p of b.puts) {
        const offset = b.log.append(p.idHi, p.idLo, p.flag, p.data, p.crc);
        sync?.forward(b.log, offset, p.idHi, p.idLo, p.flag, p.data, p.crc);
      }
      appended.push(b.log);
    } catch (e) {
      errors.push(e as Error);
      // Records of this batch appended before the failure are still pending: wait for them too.
      appended.push(b.log);
    }
  }
  await Promise.all(appended.map((log) => new Promise<void>((resolve) => {
    const done = (err: Error | null): void => {
      if (err !== null) errors.push(err);
      resolve();
    };
    if (sync === null) log.whenStored(done);
    else sync.whenStored(log, done);
  })));
  return errors;
}

/** What completing one journalled commit did. */
export interface CompletedCommit {
  readonly present: number;
  readonly appended: number;
}

/**
 * Completes a journalled commit after a crash: per partition, scans the log from the recorded offset for the
 * transaction's message ids, and appends (in put order) only the records not found. Since a batch is appended
 * contiguously and a crash cuts only a log's tail, the records found are a prefix of the batch.
 */
export async function completeCommit(store: MessageStore, parts: readonly CommitPart[], puts: readonly TxPut[],
  maxMessageSize: number): Promise<{ result: CompletedCommit; errors: Error[] }> {
  const batches = groupByPartition(store, puts);
  let present = 0;
  const missing: PartitionBatch[] = [];
  for (const b of batches) {
    const part = parts.find((p) => p.topic === b.log.topic && p.partition === b.log.partition);
    const found = await idsAfter(b.log, part?.from ?? b.log.startOffset, b.puts, maxMessageSize);
    present += found.size;
    const rest = b.puts.filter((p) => !found.has(joinId(p.idHi, p.idLo)));
    if (rest.length > 0) missing.push({ log: b.log, puts: rest });
  }
  const errors = await appendBatches(missing);
  let appended = 0;
  for (const b of missing) appended += b.puts.length;
  return { result: { present, appended }, errors };
}

/** Ids of `puts` stored in `log` at or after `from`. */
async function idsAfter(log: PartitionLog, from: number, puts: readonly TxPut[], maxMessageSize: number):
Promise<Set<bigint>> {
  const wanted = new Set(puts.map((p) => joinId(p.idHi, p.idLo)));
  const found = new Set<bigint>();
  let offset = Math.max(from, log.startOffset);
  const chunk = Math.max(1024 * 1024, maxMessageSize + RECORD_HEADER_SIZE);
  while (offset < log.readableEnd && found.size < wanted.size) {
    const buf = await log.read(offset, chunk);
    if (buf.length === 0) break;
    const set = decodeMessageSet(buf, { baseOffset: offset, topic: log.topic, partition: log.partition,
      maxMessageSize });
    if (set.bytesConsumed === 0) break;
    for (const m of set.messages) if (wanted.has(m.id)) found.add(m.id);
    offset += set.bytesConsumed;
  }
  return found;
}
