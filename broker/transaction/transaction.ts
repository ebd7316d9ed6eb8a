/**
 * One transaction held by the broker. Local transactions (`TX:<sessionId>:<n>`) belong to the connection that
 * began them; XA branches (`XID:...`) are global and outlive connections.
 *
 * States: active → (END) ended → (PREPARE) prepared → committing → gone; ROLLBACK, a timeout (unless prepared) or
 * the owner's connection closing (local only) end it from any state but committing. A transaction with no
 * messages is gone at PREPARE (vote XA_RDONLY).
 */
import type { XaTransactionKey } from '../../sdk/protocol/transaction-key.js';
import type { CommitPart, TxPut, TxRecord } from './tx-records.js';

export const TxStates = {
  ACTIVE: 'active',
  ENDED: 'ended',
  PREPARED: 'prepared',
  /** The commit is journalled (or being journalled) and its messages are being appended. */
  COMMITTING: 'committing',
} as const;
export type TxState = (typeof TxStates)[keyof typeof TxStates];

export class Transaction {
  state: TxState = TxStates.ACTIVE;
  readonly puts: TxPut[] = [];
  /** The pending timeout; armed and disarmed by the manager, which counts them. */
  timer: NodeJS.Timeout | null = null;
  /** Set once COMMITTING: what the commit record holds. */
  commit: { wasPrepared: boolean; parts: readonly CommitPart[] } | null = null;

  constructor(
    readonly key: string,
    /** Null for a local transaction. */
    readonly xa: XaTransactionKey | null,
    /** The connection of a local transaction; null for XA. */
    readonly owner: object | null,
    readonly timeoutSec: number,
  ) {}

  get isXa(): boolean {
    return this.xa !== null;
  }

  /** The journal records that rebuild this transaction (a checkpoint carries them to the new file). */
  records(): TxRecord[] {
    const out: TxRecord[] = [{ type: 'begin', key: this.key, timeoutSec: this.timeoutSec }];
    for (const put of this.puts) out.push({ type: 'put', key: this.key, put });
    if (this.state === TxStates.PREPARED || this.commit?.wasPrepared === true) out.push({ type: 'prepare', key: this.key });
    if (this.commit !== null) {
      out.push({ type: 'commit', key: this.key, wasPrepared: this.commit.wasPrepared, parts: this.commit.parts });
    }
    return out;
  }
}
