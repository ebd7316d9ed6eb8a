/**
 * A `get` whose topic section names a filter for the group. It reads the window, and filterWindow cuts it down
 * (see there why it answers with prefixes, not concatenations). TCP and the HTTP gateway both reach this through
 * handleGet.
 *
 * A filtered answer usually covers only part of the window: it ends at the first switch between accepted and
 * rejected records. So the first read is at most {@link FIRST_READ_BYTES}. The full window is read only when
 * that chunk was one run up to its end, or held no whole record. Reading a whole 1 MiB window to answer with
 * one record cost more than the filter did.
 */
import type { GetRequest } from '../../sdk/protocol/commands.js';
import { replyReadFailure, replyWindowMoved, type GetReplier } from '../server/fetch-handler.js';
import type { PartitionLog } from '../store/partition-log.js';
import type { GroupFilter } from './consumer-filters.js';
import { filterWindow, type WindowVerdict } from './filter-window.js';

export const FIRST_READ_BYTES = 16 * 1024;

/** Answers `req` (at an offset inside the log) from up to `size` bytes of `log`, through `filter`. */
export function serveFiltered(conn: GetReplier, req: GetRequest, log: PartitionLog, size: number, filter: GroupFilter): void {
  readFiltered(req, log, size, filter).then(
    ([data, verdict]) => reply(conn, req, log, data, verdict),
    (err: unknown) => replyReadFailure(conn, req, err),
  );
}

async function readFiltered(req: GetRequest, log: PartitionLog, size: number, filter: GroupFilter):
Promise<[Buffer, WindowVerdict | undefined]> {
  const first = Math.min(size, FIRST_READ_BYTES);
  let data = await log.read(req.offset, first);
  if (data.length === 0) return [data, undefined];
  let verdict = filterWindow(data, req.offset, req.topic, req.partition, filter);
  // A short read means the log (or segment) ends within the chunk: a larger read would not see more.
  if (first < size && data.length === first && (verdict.kind === 'unchanged' || !verdict.final)) {
    data = await log.read(req.offset, size);
    if (data.length === 0) return [data, undefined];
    verdict = filterWindow(data, req.offset, req.topic, req.partition, filter);
  }
  return [data, verdict];
}

function reply(conn: GetReplier, req: GetRequest, log: PartitionLog, data: Buffer, verdict: WindowVerdict | undefined): void {
  switch (verdict?.kind) {
    case undefined:
      replyWindowMoved(conn, req, log);
      return;
    case 'send':
      conn.ctx.stats.recordFetch(req.topic, verdict.bytes, verdict.messages);
      conn.replyValue(req.opaque, verdict.bytes === data.length ? data : data.subarray(0, verdict.bytes));
      return;
    case 'skip':
      conn.replyResult(301, req.opaque, String(req.offset + verdict.bytes));
      return;
    case 'unchanged':
      conn.ctx.stats.recordFetch(req.topic, data.length, 0);
      conn.replyValue(req.opaque, data);
      return;
  }
}
