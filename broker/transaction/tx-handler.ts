/**
 * The `transaction` command and `put` with a transaction key, on the wire exactly as MetaQ's TransactionProcessor
 * and TransactionalCommandProcessor answer them:
 *
 * ```
 * BEGIN                        → result 200 (empty body)
 * END                          → no reply at all
 * PREPARE                      → result 200 body "0" (XA_OK) or "3" (XA_RDONLY)
 * COMMIT_ONE_PHASE / COMMIT_TWO_PHASE / ROLLBACK / FORGET → result 200 (empty body)
 * RECOVER                      → result 200 body: prepared XID keys of the unique qualifier, joined by \r\n
 * errors                       → result 500 "XAException:code=<n>,msg=<m>" (JTA code) or 500 "<message>"
 * put ... <txKey> <opaque>     → result 200 "<msgId> <partition> -1" once journalled; 500 "<message>" if refused
 * ```
 */
import { MetaqError } from '../../sdk/errors.js';
import type { PutRequest, TransactionRequest } from '../../sdk/protocol/commands.js';
import { idToDecimal } from '../../sdk/protocol/record.js';
import type { Connection } from '../server/connection.js';
import { XaError } from './xa-error.js';

/** Answers one `transaction` request (END: none); the connection counted it in `inFlight`. */
export function handleTransaction(conn: Connection, req: TransactionRequest): void {
  const tm = conn.ctx.transactions;
  if (tm === undefined) {
    conn.replyResult(500, req.opaque, 'transactions are not enabled on this broker');
    return;
  }
  const key = req.transactionKey;
  if (key === null) {
    // Only RECOVER comes without a transaction (the decoder refuses a null key for anything else).
    conn.replyResult(200, req.opaque, tm.recover(req.uniqueQualifier).join('\r\n'));
    return;
  }
  let work: Promise<string>;
  try {
    switch (req.transactionType) {
      case 'BEGIN': work = tm.begin(conn, key, req.timeout).then(() => ''); break;
      case 'END':
        tm.end(key);
        // MetaQ sends nothing back; the client does not wait for a reply.
        conn.inFlight--;
        return;
      case 'PREPARE': work = tm.prepare(conn, key).then(String); break;
      case 'COMMIT_ONE_PHASE': work = tm.commit(conn, key, true).then(() => ''); break;
      case 'COMMIT_TWO_PHASE': work = tm.commit(conn, key, false).then(() => ''); break;
      case 'ROLLBACK': work = tm.rollback(conn, key).then(() => ''); break;
      case 'FORGET': work = tm.forget(key).then(() => ''); break;
      case 'RECOVER': work = Promise.resolve(tm.recover(req.uniqueQualifier).join('\r\n')); break;
    }
  } catch (e) {
    work = Promise.reject(e as Error);
  }
  work.then(
    (body) => conn.replyResult(200, req.opaque, body),
    (e: unknown) => {
      conn.ctx.logger.debug({ err: e, key, type: req.transactionType }, 'transaction command failed');
      conn.replyResult(500, req.opaque, errorBody(e));
    },
  );
}

/** A `put` carrying a transaction key: journalled now, appended at commit. */
export function handleTxPut(conn: Connection, req: PutRequest): void {
  const ctx = conn.ctx;
  ctx.stats.cmdPut++;
  const tm = ctx.transactions;
  if (ctx.putRefusal !== null || tm === undefined) {
    ctx.stats.putFailed++;
    conn.replyResult(403, req.opaque, ctx.putRefusal ?? 'transactions are not enabled on this broker');
    return;
  }
  let work;
  try {
    work = tm.put(conn, req.transactionKey!, req.topic, req.partition, req.flag, req.body, req.checksum);
  } catch (e) {
    work = Promise.reject(e as Error);
  }
  work.then(
    (put) => {
      ctx.stats.recordPut(req.topic, put.data.length);
      conn.replyResult(200, req.opaque, `${idToDecimal(put.idHi, put.idLo)} ${put.partition} -1`);
    },
    (e: unknown) => {
      ctx.stats.putFailed++;
      conn.replyResult(500, req.opaque, errorBody(e));
    },
  );
}

function errorBody(e: unknown): string {
  if (e instanceof XaError) return e.wireBody;
  if (e instanceof MetaqError) return e.message;
  return `internal error: ${e instanceof Error ? e.message : String(e)}`;
}
