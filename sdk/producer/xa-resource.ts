/**
 * XA branches on a broker (MetaQ's XAResource of an XAMessageProducer, JTA-shaped), for a transaction manager that
 * coordinates metaq with other resources (a database) by two-phase commit. A branch lives on one broker, the
 * resource's; unlike a local transaction it does not belong to a connection: a prepared branch survives connection
 * loss and broker restarts, `recover()` lists it, and commit or rollback finishes it from any producer that uses the
 * same unique qualifier.
 */
import type { Link } from '../cluster/broker-router.js';
import { ConnectionError, InvalidArgumentError, TransactionError } from '../errors.js';
import type { ProducerRecord, SendResult } from '../message.js';
import { NULL_TRANSACTION_KEY, formatTransactionKey, parseTransactionKey } from '../protocol/transaction-key.js';
import { checkTimeoutSec, endCommand, hostTag, transactionCommand, XaCodes, type TransactionHost } from './transaction-commands.js';
import { TransactionSends } from './transaction-sends.js';

/** JTA's Xid. */
export interface Xid {
  readonly formatId: number;
  /** Global transaction id, at most 64 bytes. */
  readonly gtrid: Buffer;
  /** Branch qualifier, at most 64 bytes. */
  readonly bqual: Buffer;
}

export interface XaResourceOptions {
  /**
   * Names this resource manager: `recover()` lists only the prepared branches started under it. Default
   * `XAMessageProducer-<hostname>` (MetaQ's); give each application instance its own stable one.
   */
  readonly uniqueQualifier?: string;
  /** The broker of the branches; default the lowest broker id known. */
  readonly brokerId?: number;
  /** Default branch timeout in seconds (0: none; the broker caps it at `maxTxTimeoutInSeconds`). */
  readonly timeoutSec?: number;
}

const NO_XID: Xid = { formatId: 0, gtrid: Buffer.alloc(0), bqual: Buffer.alloc(0) };

interface ActiveBranch<V> {
  readonly xid: Xid;
  readonly key: string;
  readonly link: Link;
  readonly brokerId: number;
  readonly sends: TransactionSends<V>;
}

/**
 * @example
 * ```ts
 * const xa = producer.xaResource({ uniqueQualifier: 'billing-1' });
 * const xid = { formatId: 1, gtrid: Buffer.from('order-42'), bqual: Buffer.from('metaq') };
 * await xa.start(xid);
 * await xa.send({ topic: 'orders', value: 'a' });
 * await xa.end(xid);
 * if ((await xa.prepare(xid)) === XaCodes.XA_OK) await xa.commit(xid, false);
 * // after a crash of the coordinator:
 * for (const x of await xa.recover()) await xa.rollback(x);
 * ```
 */
export class XaResource<V = Buffer | string> {
  readonly uniqueQualifier: string;
  private timeoutSec: number;
  private active: ActiveBranch<V> | undefined;
  /** Branches that a failed send made rollback-only. */
  private readonly rollbackOnly = new Set<string>();
  /** The broker of each branch that recover() found on a broker other than the resource's. */
  private readonly recovered = new Map<string, number>();

  /** @internal use `producer.xaResource()` */
  constructor(private readonly host: TransactionHost<V>, private readonly options: XaResourceOptions = {}) {
    this.uniqueQualifier = options.uniqueQualifier ?? `XAMessageProducer-${hostTag()}`;
    this.keyOf(NO_XID); // validates the qualifier
    this.timeoutSec = checkTimeoutSec(options.timeoutSec ?? 0);
  }

  /** The transaction key of a branch: `XID:<formatId>:<hex gtrid>:<hex bqual>:<uniqueQualifier>`. */
  keyOf(xid: Xid): string {
    if (xid.gtrid.length > 64 || xid.bqual.length > 64) {
      throw new InvalidArgumentError('an Xid has at most 64 bytes of gtrid and of bqual');
    }
    return formatTransactionKey({ kind: 'xa', formatId: xid.formatId, globalTransactionId: xid.gtrid,
      branchQualifier: xid.bqual, uniqueQualifier: this.uniqueQualifier });
  }

  /** Sets the timeout of branches started from now on (seconds, 0 = none); true as JTA's. */
  setTransactionTimeout(seconds: number): boolean {
    this.timeoutSec = checkTimeoutSec(seconds);
    return true;
  }

  getTransactionTimeout(): number {
    return this.timeoutSec;
  }

  /** True when `other` reaches the same branches: same unique qualifier and broker. */
  isSameRM(other: XaResource<unknown>): boolean {
    return other.uniqueQualifier === this.uniqueQualifier && other.brokerId() === this.brokerId();
  }

  /** Starts a branch (BEGIN): the sends until `end(xid)` join it. One branch at a time is active. */
  async start(xid: Xid, options: { timeoutSec?: number } = {}): Promise<void> {
    const key = this.keyOf(xid);
    if (this.active !== undefined) {
      throw new TransactionError(key, XaCodes.XAER_PROTO, `cannot start ${key}: branch ${this.active.key} is active`);
    }
    const brokerId = this.brokerId();
    const link = this.host.link(brokerId);
    const branch: ActiveBranch<V> = { xid, key, link, brokerId, sends: new TransactionSends(this.host) };
    this.active = branch;
    try {
      await transactionCommand(this.host, link, key, 'BEGIN',
        { timeoutSec: checkTimeoutSec(options.timeoutSec ?? this.timeoutSec) });
    } catch (e) {
      if (this.active === branch) this.active = undefined;
      throw e;
    }
  }

  /** Sends a record in the active branch; resolves with its id and partition (offset -1 until commit). */
  send(record: ProducerRecord<V>): Promise<SendResult> {
    const b = this.active;
    if (b === undefined) {
      return Promise.reject(new TransactionError(NULL_TRANSACTION_KEY, XaCodes.XAER_PROTO,
        'no XA branch is active: call start(xid) first'));
    }
    return b.sends.send(record, b.key, () => b.brokerId, (put) => {
      if (put.partition.brokerId !== b.brokerId) {
        throw new InvalidArgumentError(`XA branch ${b.key} runs on broker ${b.brokerId}: partition ` +
          `${put.partition.brokerId}-${put.partition.partition} of topic ${put.topic} cannot join it`);
      }
      return b.link;
    });
  }

  /**
   * Ends the active branch once its sends were answered (END is one way: the broker does not answer it). A branch
   * in which a send failed is rollback-only: `prepare` rolls it back and throws XA_RBROLLBACK.
   */
  async end(xid: Xid): Promise<void> {
    const key = this.keyOf(xid);
    const b = this.active;
    if (b === undefined || b.key !== key) {
      throw new TransactionError(key, XaCodes.XAER_PROTO, `cannot end ${key}: it is not the active branch`);
    }
    await b.sends.settle();
    this.active = undefined;
    if (b.sends.failed !== undefined) this.rollbackOnly.add(key);
    try {
      endCommand(this.host, b.link, key);
    } catch (e) {
      // Not sent: the broker rolls the branch back on its timeout, or refuses its prepare.
      if (!(e instanceof ConnectionError)) throw e;
      this.rollbackOnly.add(key);
    }
  }

  /** Phase one: resolves with the vote, XA_OK (0) or XA_RDONLY (3: nothing was sent; the branch is finished). */
  async prepare(xid: Xid): Promise<number> {
    const key = this.ended(xid, 'prepare');
    if (this.rollbackOnly.has(key)) {
      await this.rollback(xid);
      throw new TransactionError(key, XaCodes.XA_RBROLLBACK, `branch ${key} was rolled back: a send in it failed`);
    }
    const vote = await transactionCommand(this.host, this.linkOf(key), key, 'PREPARE', { decisive: true });
    const n = Number(vote);
    if (vote === '' || !Number.isInteger(n)) {
      throw new TransactionError(key, null, `prepare of ${key}: unreadable vote ${JSON.stringify(vote)}`);
    }
    return n;
  }

  /** Phase two (`onePhase` false, after prepare) or a one-phase commit of an ended, unprepared branch. */
  async commit(xid: Xid, onePhase: boolean): Promise<void> {
    const key = this.ended(xid, 'commit');
    if (this.rollbackOnly.has(key)) {
      await this.rollback(xid);
      throw new TransactionError(key, XaCodes.XA_RBROLLBACK, `branch ${key} was rolled back: a send in it failed`);
    }
    await transactionCommand(this.host, this.linkOf(key), key, onePhase ? 'COMMIT_ONE_PHASE' : 'COMMIT_TWO_PHASE',
      { decisive: true });
    this.recovered.delete(key);
  }

  /** Rolls the branch back (ended or prepared; an active one is ended first). */
  async rollback(xid: Xid): Promise<void> {
    const key = this.keyOf(xid);
    if (this.active?.key === key) await this.end(xid);
    await transactionCommand(this.host, this.linkOf(key), key, 'ROLLBACK', { decisive: true });
    this.rollbackOnly.delete(key);
    this.recovered.delete(key);
  }

  /** Forgets a heuristically completed branch. */
  async forget(xid: Xid): Promise<void> {
    const key = this.keyOf(xid);
    await transactionCommand(this.host, this.linkOf(key), key, 'FORGET');
    this.recovered.delete(key);
  }

  /** The prepared branches of this unique qualifier on every known broker (RECOVER to each), merged. */
  async recover(): Promise<Xid[]> {
    const out: Xid[] = [];
    for (const id of this.host.brokerIds()) {
      // No transaction key (`null` on the wire), as MetaQ's client sends it: the broker lists by qualifier.
      const body = await transactionCommand(this.host, this.host.link(id), null, 'RECOVER',
        { uniqueQualifier: this.uniqueQualifier });
      for (const line of body.split('\r\n')) {
        if (line === '') continue;
        const k = parseTransactionKey(line);
        if (k?.kind !== 'xa') continue;
        out.push({ formatId: k.formatId, gtrid: k.globalTransactionId, bqual: k.branchQualifier });
        this.recovered.set(line, id);
      }
    }
    return out;
  }

  private brokerId(): number {
    if (this.options.brokerId !== undefined) return this.options.brokerId;
    const ids = this.host.brokerIds();
    if (ids.length === 0) throw new ConnectionError('no broker is known to run XA branches on');
    return ids[0]!;
  }

  private linkOf(key: string): Link {
    return this.host.link(this.recovered.get(key) ?? this.brokerId());
  }

  private ended(xid: Xid, what: string): string {
    const key = this.keyOf(xid);
    if (this.active?.key === key) {
      throw new TransactionError(key, XaCodes.XAER_PROTO, `cannot ${what} ${key}: end(xid) it first`);
    }
    return key;
  }
}
