import type { Request, OversizedRequest } from '../../sdk/protocol/commands.js';
import { handleAdmin } from './admin-handler.js';
import type { Connection } from './connection.js';
import { putFailure } from './connection.js';
import { handleGet, handleOffset } from './fetch-handler.js';
import { handlePut } from './put-handler.js';
import { handleSync } from '../ha/sync-handler.js';
import { handleTransaction } from '../transaction/tx-handler.js';

/**
 * Routes one decoded request to its handler. Every request except `quit` is answered exactly once (the
 * caller counted it in `conn.inFlight`); a handler bug becomes a 500 for that request, not a dead broker.
 */
export function dispatchRequest(conn: Connection, req: Exclude<Request, { type: 'quit' }> | OversizedRequest): void {
  try {
    switch (req.type) {
      case 'put':
        handlePut(conn, req);
        return;
      case 'get':
        handleGet(conn, req);
        return;
      case 'offset':
        handleOffset(conn, req);
        return;
      case 'stats':
        if (req.item === 'replication') {
          // An async slave's replication state (broker/ha); a master has none.
          const lines = conn.ctx.replication?.statsLines() ?? ['slave false', ...conn.ctx.syncMaster?.statsLines() ?? []];
          conn.replyResult(200, req.opaque, `STATS\r\n${lines.map((l) => `${l}\r\n`).join('')}END\r\n`);
          return;
        }
        handleAdmin(conn, req);
        return;
      case 'version':
        handleAdmin(conn, req);
        return;
      case 'oversized':
        conn.ctx.stats.putFailed++;
        conn.replyResult(500, req.opaque, putFailure(conn.ctx, req.topic, req.partition,
          `message of ${req.length} bytes exceeds maxMessageSize ${conn.ctx.config.system.maxMessageSize}`));
        return;
      case 'sync':
        handleSync(conn, req);
        return;
      case 'transaction':
        handleTransaction(conn, req);
        return;
    }
  } catch (err) {
    conn.ctx.logger.error({ err, request: req.type }, 'request handler failed');
    conn.replyResult(500, 'opaque' in req ? req.opaque : 0, `internal error: ${(err as Error).message}`);
  }
}
