import { MetaqError } from '../../sdk/errors.js';
import type { PutRequest } from '../../sdk/protocol/commands.js';
import { NO_CHECKSUM } from '../../sdk/protocol/commands.js';
import { crc32Masked } from '../../sdk/protocol/record.js';
import type { PartitionLog } from '../store/partition-log.js';
import type { Connection } from './connection.js';
import { putFailure } from './connection.js';
import { writeAscii, writeDecimal } from '../../sdk/protocol/digits.js';

/** Scratch space for one reply body: `<msgId> <partition> <offset>` is at most 20 + 1 + 11 + 1 + 16 bytes. */
const body = Buffer.allocUnsafe(64);

/**
 * `put`: checks the request, assigns a message id, appends the record to the partition's pending batch and
 * renders the reply `result 200 <len> <opaque>\r\n<msgId> <partition> <offset>`, which is sent only once the
 * store reports the record stored (after the covering fsync in group-commit mode).
 */
export function handlePut(conn: Connection, req: PutRequest): void {
  const ctx = conn.ctx;
  ctx.stats.cmdPut++;
  if (req.transactionKey !== null) {
    fail(conn, req, req.partition, 'transactions are not enabled on this broker');
    return;
  }
  let log: PartitionLog;
  let partition = req.partition;
  try {
    if (partition === -1) {
      const topic = ctx.store.topicConfig(req.topic);
      partition = topic === undefined ? 0 : Math.floor(Math.random() * topic.numPartitions);
    }
    log = ctx.store.getOrCreate(req.topic, partition);
  } catch (err) {
    fail(conn, req, partition, (err as Error).message);
    return;
  }
  // Bodies above maxMessageSize never get here: the decoder skips them and yields an `oversized` request.
  const data = req.body;
  const crc = crc32Masked(data);
  if (req.checksum !== NO_CHECKSUM && req.checksum !== crc) {
    fail(conn, req, partition, `Checksum failure,message may be corrupted: sent ${req.checksum}, computed ${crc}`);
    return;
  }
  const idWorker = ctx.idWorker;
  idWorker.next();
  let offset: number;
  try {
    offset = log.append(idWorker.hi, idWorker.lo, req.flag, data, crc);
  } catch (err) {
    if (!(err instanceof MetaqError)) throw err;
    fail(conn, req, partition, err.message);
    return;
  }
  ctx.stats.recordPut(req.topic, data.length);

  let n = idWorker.writeDecimal(body, 0);
  body[n++] = 0x20;
  n = writeDecimal(body, n, partition);
  body[n++] = 0x20;
  n = writeDecimal(body, n, offset);

  const batch = conn.ackBatch(log);
  const b = batch.reserve(40 + n);
  let p = writeAscii(b, batch.len, 'result 200 ');
  p = writeDecimal(b, p, n);
  b[p++] = 0x20;
  p = writeDecimal(b, p, req.opaque);
  b[p++] = 0x0d;
  b[p++] = 0x0a;
  // A byte loop: Buffer#copy's fixed cost is several times that of copying ~30 bytes.
  for (let i = 0; i < n; i++) b[p + i] = body[i]!;
  batch.len = p + n;
  batch.opaques.push(req.opaque);
}

function fail(conn: Connection, req: PutRequest, partition: number, detail: string): void {
  conn.ctx.stats.putFailed++;
  conn.replyResult(500, req.opaque, putFailure(conn.ctx, req.topic, partition, detail));
}
