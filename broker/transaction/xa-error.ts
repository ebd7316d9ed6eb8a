/**
 * JTA's XAException as the broker reports it: `result 500` with the body `XAException:code=<n>,msg=<m>`, from
 * which MetaQ's client rebuilds an XAException with that error code.
 */
import { ErrorCodes, MetaqError } from '../../sdk/errors.js';
import type { XaCode } from '../../sdk/protocol/xa-codes.js';

export { XaCodes, type XaCode } from '../../sdk/protocol/xa-codes.js';

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
