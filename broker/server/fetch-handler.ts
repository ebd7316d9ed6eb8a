import {
  InvalidArgumentError, OffsetOutOfRangeError, UnknownTopicError, WrongPartitionError,
} from '../../sdk/errors.js';
import type { GetRequest, OffsetRequest } from '../../sdk/protocol/commands.js';
import { MAX_OFFSET } from '../../sdk/protocol/commands.js';
import { RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import { serveFiltered } from '../filter/filtered-get.js';
import type { PartitionLog } from '../store/partition-log.js';
import type { BrokerContext } from './broker-context.js';

/**
 * Where a get or offset request is answered: a TCP connection, or an HTTP request of the gateway. Each request is
 * answered exactly once through replyResult or replyValue.
 */
export interface GetReplier {
  readonly ctx: BrokerContext;
  /** True once nobody can receive the answer any more (a parked get is not started then). */
  readonly isClosed: boolean;
  /** Cancels of parked long polls; the replier calls them when it closes. */
  readonly cancellers: Set<() => void>;
  replyResult(code: number, opaque: number, body: string): void;
  replyValue(opaque: number, data: Buffer): void;
}

/**
 * The partition a get/offset names, or undefined when its topic is not accepted (or not a valid name) or the
 * partition is out of range. A configured but never-written partition is a valid empty log, so consumers can
 * long-poll it; creating its log object touches no disk.
 */
function findLog(conn: GetReplier, topic: string, partition: number): PartitionLog | undefined {
  try {
    return conn.ctx.store.getOrCreate(topic, partition);
  } catch (err) {
    if (err instanceof UnknownTopicError || err instanceof WrongPartitionError || err instanceof InvalidArgumentError) {
      return undefined;
    }
    throw err;
  }
}

function notExists(conn: GetReplier, opaque: number, topic: string, partition: number): void {
  conn.replyResult(404, opaque, `The topic \`${topic}\` in partition \`${partition}\` is not exists`);
}

/**
 * The group MetaQ's topic browser and active pulls use: they expect an immediate 404 at the end of the log, so
 * their gets never long-poll.
 */
export const NO_WAIT_GROUP = 'Just_for_Browser';

/**
 * `get`: answers `value` with a byte window of the log starting at the offset (it may cut the last record),
 * 301 with the offset to move to when the requested one is outside the log, or, at the end of the log,
 * waits up to longPollTimeoutMs for new data before answering 404 (except for {@link NO_WAIT_GROUP}, or when
 * `mayWait` is false).
 */
export function handleGet(conn: GetReplier, req: GetRequest, mayWait = true): void {
  const ctx = conn.ctx;
  ctx.stats.cmdGet++;
  if (req.maxSize <= 0) {
    conn.replyResult(400, req.opaque, `Bad request,invalid max size:${req.maxSize}`);
    return;
  }
  const log = findLog(conn, req.topic, req.partition);
  if (log === undefined) {
    ctx.stats.recordGet(req.topic, true);
    notExists(conn, req.opaque, req.topic, req.partition);
    return;
  }
  serveGet(conn, req, log, mayWait && ctx.config.system.longPollTimeoutMs > 0 && req.group !== NO_WAIT_GROUP);
}

function serveGet(conn: GetReplier, req: GetRequest, log: PartitionLog, mayWait: boolean): void {
  const ctx = conn.ctx;
  if (req.offset < log.startOffset) {
    conn.replyResult(301, req.opaque, String(log.startOffset));
    return;
  }
  const end = log.readableEnd;
  if (req.offset >= end) {
    if (req.offset > end && (ctx.config.system.updateConsumerOffsets || req.offset >= MAX_OFFSET)) {
      conn.replyResult(301, req.opaque, String(end));
      return;
    }
    if (req.offset === end && mayWait && !conn.isClosed) {
      park(conn, req, log);
      return;
    }
    ctx.stats.recordGet(req.topic, true);
    conn.replyResult(404, req.opaque, `Could not find message at position ${req.offset}`);
    return;
  }
  const size = Math.min(req.maxSize, ctx.config.system.maxTransferSize);
  const filter = ctx.filters?.find(req.topic, req.group);
  if (filter !== undefined) return serveFiltered(conn, req, log, size, filter);
  log.read(req.offset, size).then(
    (data) => {
      if (data.length === 0) {
        replyWindowMoved(conn, req, log);
        return;
      }
      ctx.stats.recordFetch(req.topic, data.length, wholeRecords(data));
      conn.replyValue(req.opaque, data);
    },
    (err: unknown) => replyReadFailure(conn, req, err),
  );
}

/** A read came back empty: the window moved (retention ran) between the check and the read; the client asks again. */
export function replyWindowMoved(conn: GetReplier, req: GetRequest, log: PartitionLog): void {
  conn.replyResult(301, req.opaque, String(log.nearestOffset(req.offset)));
}

/** A read failed: 301 to the nearest offset when it fell below the log's start, else 500 (logged). */
export function replyReadFailure(conn: GetReplier, req: GetRequest, err: unknown): void {
  if (err instanceof OffsetOutOfRangeError) {
    conn.replyResult(301, req.opaque, String(err.nearest));
    return;
  }
  conn.ctx.logger.error({ err, topic: req.topic, partition: req.partition, offset: req.offset }, 'read failed');
  conn.replyResult(500, req.opaque, `read failed: ${(err as Error).message}`);
}

/**
 * Whole records at the start of a fetched window (its last one may be cut): a walk over the length fields only.
 * It runs per TCP get for the messages-out metric, so it reads the big-endian length bytes by hand (about twice as
 * fast as readInt32BE's checked read over a window of small records).
 */
function wholeRecords(data: Buffer): number {
  const len = data.length;
  let n = 0;
  let pos = 0;
  while (pos + RECORD_HEADER_SIZE <= len) {
    const size = (data[pos]! << 24) | (data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!;
    const next = pos + RECORD_HEADER_SIZE + size;
    if (next > len || next <= pos) break;
    n++;
    pos = next;
  }
  return n;
}

/** Waits for the log to grow past the requested offset, then serves the get (or 404 on timeout). */
function park(conn: GetReplier, req: GetRequest, log: PartitionLog): void {
  let cancel: (() => void) | undefined = undefined;
  cancel = conn.ctx.longPoll.wait(log, conn.ctx.config.system.longPollTimeoutMs, (reason) => {
    if (cancel !== undefined) conn.cancellers.delete(cancel);
    serveGet(conn, req, log, reason === 'data');
  });
  conn.cancellers.add(cancel);
}

/** `offset`: the nearest valid offset (the start of the segment holding it), as MetaQ's getNearestOffset. */
export function handleOffset(conn: GetReplier, req: OffsetRequest): void {
  conn.ctx.stats.cmdOffset++;
  const log = findLog(conn, req.topic, req.partition);
  if (log === undefined) {
    notExists(conn, req.opaque, req.topic, req.partition);
    return;
  }
  conn.replyResult(200, req.opaque, String(log.nearestOffset(req.offset)));
}
