/**
 * Folds the journal's records into the transactions that were unfinished at the crash. Records may repeat (a
 * checkpoint interrupted by a crash leaves a transaction's records in both the old and the new file): a put is
 * kept once per message id, and puts are ordered by message id, which is their put order.
 */
import { joinId } from '../../sdk/protocol/record.js';
import type { CommitPart, TxPut, TxRecord } from './tx-records.js';

export interface ReplayedTx {
  readonly key: string;
  timeoutSec: number;
  readonly puts: TxPut[];
  prepared: boolean;
  commit: { wasPrepared: boolean; parts: readonly CommitPart[] } | null;
}

/** Unfinished transactions in order of first appearance. */
export function foldRecords(records: readonly TxRecord[]): ReplayedTx[] {
  const txs = new Map<string, { tx: ReplayedTx; ids: Set<bigint> }>();
  const get = (key: string): { tx: ReplayedTx; ids: Set<bigint> } => {
    let e = txs.get(key);
    if (e === undefined) {
      e = { tx: { key, timeoutSec: 0, puts: [], prepared: false, commit: null }, ids: new Set() };
      txs.set(key, e);
    }
    return e;
  };
  for (const r of records) {
    switch (r.type) {
      case 'begin':
        get(r.key).tx.timeoutSec = r.timeoutSec;
        break;
      case 'put': {
        const e = get(r.key);
        const id = joinId(r.put.idHi, r.put.idLo);
        if (!e.ids.has(id)) {
          e.ids.add(id);
          e.tx.puts.push(r.put);
        }
        break;
      }
      case 'prepare':
        get(r.key).tx.prepared = true;
        break;
      case 'commit':
        get(r.key).tx.commit = { wasPrepared: r.wasPrepared, parts: r.parts };
        break;
      case 'commit-done':
      case 'rollback':
        txs.delete(r.key);
        break;
      case 'forget':
        break;
    }
  }
  const out: ReplayedTx[] = [];
  for (const { tx } of txs.values()) {
    tx.puts.sort((a, b) => (a.idHi >>> 0) - (b.idHi >>> 0) || (a.idLo >>> 0) - (b.idLo >>> 0));
    out.push(tx);
  }
  return out;
}
