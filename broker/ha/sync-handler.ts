/**
 * `sync` on a slave: the master pushes each record it stored, and the slave stores it at the master's offset.
 *
 * ```
 * sync <topic> <partition> <len> <flag> <msgId> <checksum> <offset> <opaque>\r\n<data>   ours: at the master's offset
 * sync <topic> <partition> <len> <flag> <msgId> [<checksum>] <opaque>\r\n<data>          MetaQ: at the local end
 * -> result 200 <len> <opaque>\r\n<msgId> <partition> <offset>     once stored per the slave's flush policy
 * -> result 500 ...                                                   nothing stored (or the record was already there)
 * ```
 * Accepted only while this broker replicates as a slave (`ctx.replication` is a running {@link SlaveReplicator});
 * a master or a promoted node refuses with 500 and says why. The record goes through {@link replicaAppend}, as the
 * pull loop's records do, so pushes and fetches may overlap:
 * - at the local end (the common case: pushes arrive at the rate of the master's puts): appended with the master's
 *   msgId, flag and CRC, answered with the connection's ack batch once stored (as a put);
 * - below the end (the pull loop stored it first): the local record must be the same, else 500 divergence;
 * - beyond the end (the pull loop has not caught up): the partition's pull loop is woken and the push waits, at most
 *   80% of `sendToSlaveTimeoutInMills` (so the master hears this reason rather than its own timeout), until the gap
 *   is filled; a closed connection or the slave's stop ends the wait. A missing local log is created only for a
 *   push at offset 0: at any other offset the pull loop creates it at the master's first offset and fills it, so
 *   that the slave never holds a log with a silent hole at its start.
 * Every push counts as a put in BrokerStats (cmd_put, put_failed, the topic's messages in when appended) and as
 * `pushed_messages` in `stats replication`.
 */
import { MetaqError, UnknownTopicError, WrongPartitionError } from '../../sdk/errors.js';
import type { SyncRequest } from '../../sdk/protocol/commands.js';
import { writeAscii, writeDecimal } from '../../sdk/protocol/digits.js';
import type { PartitionLog } from '../store/partition-log.js';
import type { BrokerContext } from '../server/broker-context.js';
import type { Connection } from '../server/connection.js';
import { putFailure } from '../server/connection.js';
import { queueStoredReply } from '../server/put-handler.js';
import { pushedCrc, replicaAppend, type ReplicaRecord } from './replica-append.js';
import { SlaveReplicator } from './slave-replicator.js';

/** Shortest wait for a gap, whatever `sendToSlaveTimeoutInMills` says. */
const MIN_GAP_WAIT_MS = 100;
const TWO_32 = 0x1_0000_0000n;

/** Handles one `sync` request (dispatch's `case 'sync'`); answers it exactly once. */
export function handleSync(conn: Connection, req: SyncRequest): void {
  const ctx = conn.ctx;
  ctx.stats.cmdPut++;
  const slave = ctx.replication;
  if (!(slave instanceof SlaveReplicator) || slave.stopped) {
    fail(conn, req, notReplicating(ctx, slave instanceof SlaveReplicator));
    return;
  }
  let rec: ReplicaRecord;
  let log: PartitionLog | undefined;
  try {
    const crc = pushedCrc(req.body, req.checksum);
    const id = BigInt.asUintN(64, req.msgId);
    rec = { idHi: Number(id / TWO_32), idLo: Number(id % TWO_32), flag: req.flag, data: req.body, crc };
    log = ctx.store.get(req.topic, req.partition);
    if (log === undefined) {
      if (req.offset === null || req.offset === 0) log = ctx.store.getOrCreate(req.topic, req.partition, 0);
      else checkAccepted(ctx, req.topic, req.partition);
    }
  } catch (err) {
    if (!(err instanceof MetaqError)) throw err;
    fail(conn, req, err.message);
    return;
  }
  slave.replicaFor(req.topic, req.partition)?.pushed();
  if (log === undefined) {
    // Only a push carrying an offset beyond 0 gets here (see the file comment).
    void awaitGap(conn, slave, req, rec, req.offset ?? 0);
    return;
  }
  place(conn, slave, req, rec, log, req.offset ?? log.endOffset, true);
}

/** Stores `rec` at `offset` of `log` and answers; `batched`: in the connection's ack batch (synchronous callers). */
function place(conn: Connection, slave: SlaveReplicator, req: SyncRequest, rec: ReplicaRecord, log: PartitionLog,
  offset: number, batched: boolean): void {
  let placed: ReturnType<typeof replicaAppend>;
  try {
    placed = replicaAppend(log, offset, rec);
  } catch (err) {
    if (!(err instanceof MetaqError)) throw err;
    fail(conn, req, err.message);
    return;
  }
  if (placed === 'appended') {
    conn.ctx.stats.recordPut(req.topic, req.body.length);
    slave.pushStored();
    if (batched) {
      reply(conn, log, req, offset);
      return;
    }
    log.whenStored((err) => {
      if (err !== null) fail(conn, req, err.message);
      else succeed(conn, slave, req, offset, false);
    });
  } else if (placed === 'ahead') {
    if (batched) void awaitGap(conn, slave, req, rec, offset);
    else fail(conn, req, `local end ${log.endOffset} moved back below the pushed offset ${offset}`);
  } else {
    void placed.then(() => succeed(conn, slave, req, offset, true), (err: unknown) => fail(conn, req, (err as Error).message));
  }
}

/** A push beyond the local end: wakes the pull loop and waits (bounded) until the gap is filled, then stores it. */
async function awaitGap(conn: Connection, slave: SlaveReplicator, req: SyncRequest, rec: ReplicaRecord,
  offset: number): Promise<void> {
  const replica = slave.replicaFor(req.topic, req.partition);
  if (replica === undefined) {
    fail(conn, req, notReplicating(conn.ctx, true));
    return;
  }
  const waitMs = Math.max(MIN_GAP_WAIT_MS, Math.floor(conn.ctx.config.system.sendToSlaveTimeoutInMills * 0.8));
  const abort = new AbortController();
  const cancel = (): void => abort.abort();
  conn.cancellers.add(cancel);
  let reached: boolean;
  try {
    reached = await replica.awaitEnd(offset, waitMs, abort.signal);
  } finally {
    conn.cancellers.delete(cancel);
  }
  const log = conn.ctx.store.get(req.topic, req.partition);
  if (!reached || log === undefined) {
    const why = abort.signal.aborted ? 'the connection is closing' : slave.stopped ? 'the slave stopped'
      : `the local end ${replica.localEnd ?? 'none (no local log yet)'} has not reached the pushed offset ${offset} ` +
        `within ${waitMs} ms (the fetch loop is still filling the gap)`;
    fail(conn, req, `${why}; nothing stored`);
    return;
  }
  place(conn, slave, req, rec, log, offset, false);
}

/** Scratch space for one reply body `<msgId> <partition> <offset>`. */
const replyBody = Buffer.allocUnsafe(64);

/** The put-style reply rendered into the connection's ack batch: sent once the record is stored. */
function reply(conn: Connection, log: PartitionLog, req: SyncRequest, offset: number): void {
  let n = writeAscii(replyBody, 0, `${req.msgId} `);
  n = writeDecimal(replyBody, n, req.partition);
  replyBody[n++] = 0x20;
  n = writeDecimal(replyBody, n, offset);
  queueStoredReply(conn, log, req.opaque, replyBody, n);
}

function succeed(conn: Connection, slave: SlaveReplicator, req: SyncRequest, offset: number, count: boolean): void {
  if (count) slave.pushStored();
  conn.replyResult(200, req.opaque, `${req.msgId} ${req.partition} ${offset}`);
}

function fail(conn: Connection, req: SyncRequest, detail: string): void {
  conn.ctx.stats.putFailed++;
  conn.replyResult(500, req.opaque, putFailure(conn.ctx, req.topic, req.partition, `sync refused: ${detail}`));
}

/** Throws UnknownTopicError / WrongPartitionError unless this broker's topic sections accept the partition. */
function checkAccepted(ctx: BrokerContext, topic: string, partition: number): void {
  const tc = ctx.store.topicConfig(topic);
  if (tc === undefined) throw new UnknownTopicError(topic);
  if (partition < 0 || partition >= tc.numPartitions) throw new WrongPartitionError(topic, partition, tc.numPartitions);
}

function notReplicating(ctx: BrokerContext, hasReplication: boolean): string {
  const slaveId = ctx.config.system.slaveId;
  if (slaveId < 0) return 'sync is accepted only by a slave, and this broker is a master (system.slaveId -1)';
  return hasReplication
    ? `this broker (slave ${slaveId}) is stopping its replication; sync is accepted only by a replicating slave`
    : `this broker (slave ${slaveId}) does not replicate (promoted to master, or started without ZooKeeper); ` +
      'sync is accepted only by a replicating slave';
}
