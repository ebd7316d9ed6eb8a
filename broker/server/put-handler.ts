import { MetaqError } from '../../sdk/errors.js';
import type { PutRequest } from '../../sdk/protocol/commands.js';
import { NO_CHECKSUM } from '../../sdk/protocol/commands.js';
import { crc32Masked } from '../../sdk/protocol/record.js';
import type { PartitionLog } from '../store/partition-log.js';
import type { BrokerContext } from './broker-context.js';
import type { Connection } from './connection.js';
import { putFailure } from './connection.js';
import { writeAscii, writeDecimal } from '../../sdk/protocol/digits.js';
import { handleTxPut } from '../transaction/tx-handler.js';

/** Scratch space for one reply body: `<msgId> <partition> <offset>` is at most 20 + 1 + 11 + 1 + 16 bytes. */
const body = Buffer.allocUnsafe(64);

/**
 * What {@link appendPut} did. One shared object, overwritten by every call and read right after it (the put path
 * allocates nothing per message): `log` is set when the record was appended at `offset`, else `code` and `error` hold
 * MetaQ's failure code and detail. The message id is the id worker's current one (`ctx.idWorker.hi/lo`).
 */
export interface PutOutcome {
  partition: number;
  log: PartitionLog | null;
  offset: number;
  /** On failure: 403 when this broker takes no puts (as MetaQ's closed partition or recover mode), else 500. */
  code: number;
  error: string;
}

const outcome: PutOutcome = { partition: 0, log: null, offset: 0, code: 500, error: '' };

/**
 * The put semantics shared by the TCP `put` and the HTTP gateway: picks a partition for -1, checks the topic,
 * partition and checksum, assigns a message id and appends the record to the partition's pending batch (stored per
 * the flush policy: wait with `log.whenStored` before acknowledging). Counts the command and its failures.
 */
export function appendPut(ctx: BrokerContext, topic: string, partition: number, flag: number, data: Buffer,
  checksum: number): PutOutcome {
  ctx.stats.cmdPut++;
  const o = outcome;
  o.log = null;
  o.partition = partition;
  if (ctx.putRefusal !== null) return failed(ctx, ctx.putRefusal, 403);
  let log: PartitionLog;
  try {
    if (partition === -1) {
      const tc = ctx.store.topicConfig(topic);
      o.partition = tc === undefined ? 0 : Math.floor(Math.random() * tc.numPartitions);
    }
    log = ctx.store.getOrCreate(topic, o.partition);
  } catch (err) {
    return failed(ctx, (err as Error).message);
  }
  const crc = crc32Masked(data);
  if (checksum !== NO_CHECKSUM && checksum !== crc) {
    return failed(ctx, `Checksum failure,message may be corrupted: sent ${checksum}, computed ${crc}`);
  }
  const sync = ctx.syncMaster;
  if (sync !== null) {
    const refusal = sync.refusal();
    if (refusal !== null) return failed(ctx, refusal);
  }
  const idWorker = ctx.idWorker;
  idWorker.next();
  try {
    o.offset = log.append(idWorker.hi, idWorker.lo, flag, data, crc);
  } catch (err) {
    if (!(err instanceof MetaqError)) throw err;
    return failed(ctx, err.message);
  }
  sync?.forward(log, o.offset, idWorker.hi, idWorker.lo, flag, data, crc);
  ctx.stats.recordPut(topic, data.length);
  o.log = log;
  return o;
}

function failed(ctx: BrokerContext, detail: string, code = 500): PutOutcome {
  ctx.stats.putFailed++;
  outcome.code = code;
  outcome.error = detail;
  return outcome;
}

/**
 * `put`: checks the request, assigns a message id, appends the record to the partition's pending batch and
 * renders the reply `result 200 <len> <opaque>\r\n<msgId> <partition> <offset>`, which is sent only once the
 * store reports the record stored (after the covering fsync in group-commit mode).
 */
export function handlePut(conn: Connection, req: PutRequest): void {
  const ctx = conn.ctx;
  if (req.transactionKey !== null) {
    handleTxPut(conn, req);
    return;
  }
  // Bodies above maxMessageSize never get here: the decoder skips them and yields an `oversized` request.
  const o = appendPut(ctx, req.topic, req.partition, req.flag, req.body, req.checksum);
  const log = o.log;
  if (log === null) {
    conn.replyResult(o.code, req.opaque, putFailure(ctx, req.topic, o.partition, o.error));
    return;
  }

  let n = ctx.idWorker.writeDecimal(body, 0);
  body[n++] = 0x20;
  n = writeDecimal(body, n, o.partition);
  body[n++] = 0x20;
  n = writeDecimal(body, n, o.offset);
  queueStoredReply(conn, log, req.opaque, body, n);
}

/**
 * Renders `result 200 <n> <opaque>\r\n<body[0..n)>` into the connection's ack batch of `log`: sent once the
 * records appended so far are stored (and, in sync replication, on the slave too).
 */
export function queueStoredReply(conn: Connection, log: PartitionLog, opaque: number, body: Buffer, n: number): void {
  const batch = conn.ackBatch(log);
  const b = batch.reserve(40 + n);
  let p = writeAscii(b, batch.len, 'result 200 ');
  p = writeDecimal(b, p, n);
  b[p++] = 0x20;
  p = writeDecimal(b, p, opaque);
  b[p++] = 0x0d;
  b[p++] = 0x0a;
  // A byte loop: Buffer#copy's fixed cost is several times that of copying ~30 bytes.
  for (let i = 0; i < n; i++) b[p + i] = body[i]!;
  batch.len = p + n;
  batch.opaques.push(opaque);
}
