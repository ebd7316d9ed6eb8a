import { idToDecimal } from '../../sdk/protocol/record.js';
import { whenAcked, type BrokerContext } from '../server/broker-context.js';
import { appendPut } from '../server/put-handler.js';

/** How {@link storePut} ended: the stored record, or MetaQ's failure detail (refused, or not stored). */
export type StoredPut =
  | { readonly ok: true; readonly id: string; readonly partition: number; readonly offset: number }
  | { readonly ok: false; readonly code: number; readonly partition: number; readonly error: string };

/**
 * A put of the HTTP routes: the TCP put's checks and append (appendPut), then a wait until the record is stored per
 * the flush policy. A record that is not stored counts as a failed put, as over TCP.
 */
export async function storePut(ctx: BrokerContext, topic: string, partition: number, flag: number, data: Buffer,
  checksum: number): Promise<StoredPut> {
  const o = appendPut(ctx, topic, partition, flag, data, checksum);
  const log = o.log;
  if (log === null) return { ok: false, code: o.code, partition: o.partition, error: o.error };
  // appendPut's outcome and the id worker are shared by every put: read them before waiting.
  const stored: StoredPut = { ok: true, id: idToDecimal(ctx.idWorker.hi, ctx.idWorker.lo), partition: o.partition,
    offset: o.offset };
  const err = await new Promise<Error | null>((resolve) => whenAcked(ctx, log, resolve));
  if (err === null) return stored;
  ctx.stats.putFailed++;
  return { ok: false, code: 500, partition: stored.partition, error: err.message };
}
