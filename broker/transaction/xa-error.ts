/**
 * JTA's XAException as the broker reports it: `result 500` with the body `XAException:code=<n>,msg=<m>`, from
 * which MetaQ's client rebuilds an XAException with that error code.
 */
import { ErrorCodes, MetaqError } from '../../sdk/errors.js';

/** javax.transaction.xa.XAException error codes (and the XAResource votes). */
export const XaCodes = {
  XA_OK: 0,
  XA_RDONLY: 3,
  XA_HEURHAZ: 8,
  XA_RBROLLBACK: 100,
  XA_RBOTHER: 104,
  XA_RBTIMEOUT: 106,
  XAER_RMERR: -3,
  XAER_NOTA: -4,
  XAER_INVAL: -5,
  XAER_PROTO: -6,
  XAER_RMFAIL: -7,
} as const;
export type XaCode = (typeof XaCodes)[keyof typeof XaCodes];

/**
 * Thrown by the transaction manager when a transaction command cannot be done in the transaction's state, names
 * an unknown transaction, or the transaction was rolled back (timeout, failure). `xaCode` is the JTA code.
 */
export class XaError extends MetaqError {
  constructor(readonly xaCode: XaCode, message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.BROKER, message, options);
  }

  /** The `result 500` body MetaQ sends for an XAException. */
  get wireBody(): string {
    return `XAException:code=${this.xaCode},msg=${this.message}`;
  }
}
