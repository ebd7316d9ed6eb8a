/**
 * Sync replication, the master side (MetaQ's samsa plugin): with `system.syncReplication`, every put appended here
 * is forwarded to the slave with `sync` (carrying this log's offset, so the slave stores it at the same offset), and
 * the put is answered only once this store AND the slave have stored it (each per its own flush policy).
 *
 * - The slave is the lowest-numbered `brokers/ids/<id>/slave<n>` (watched). None connected: puts are refused with
 *   500 before anything is appended.
 * - A slave's failure (error answer, no answer within `sendToSlaveTimeoutInMills`, dropped connection) fails the
 *   waiting puts that cover the record with 500; the record stays in this log (the slave's pull loop fetches it), so
 *   a producer's retry may store it twice: at-least-once, as with any unacknowledged put.
 * - A confirmation of the record ending at `e` means the slave holds everything below `e` (it stores pushes at exact
 *   offsets, in order), so it resolves every waiting put up to `e`.
 * - After `slaveContinuousFailureThreshold` consecutive failures the master withdraws its `topics-pub`
 *   registrations (producers stop choosing it; consumers keep reading) and checks every `checkSlaveIntervalInMills`
 *   whether the slave caught up (its `stats offsets` ends equal this store's), then registers them again.
 */
import type { Logger } from 'pino';
import { encodeSync } from '../../sdk/protocol/encode.js';
import { joinId, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import { parseSlaveNode, ZkPaths } from '../../sdk/protocol/zk/zk-layout.js';
import type { ZkSession, ZkWatch } from '../../sdk/protocol/zk/zk-session.js';
import type { BrokerRegistry } from '../cluster/broker-registry.js';
import type { SystemConfig } from '../config/broker-config.js';
import type { MessageStore } from '../store/message-store.js';
import type { PartitionLog } from '../store/partition-log.js';
import { MasterLink, readPartitionEnds } from './master-link.js';

type StoredCallback = (err: Error | null) => void;

/** One partition's replication state. */
interface PartState {
  /** The slave holds everything below this offset (-1: nothing confirmed yet). */
  confirmed: number;
  /** Ends of records the slave failed to store and has not confirmed since, ascending. */
  readonly failedEnds: number[];
  /** Puts waiting for the slave, by the log end they need confirmed (ascending), and their callbacks. */
  readonly waitT: number[];
  readonly waitCb: StoredCallback[];
  lastError: string;
}

export interface SyncMasterOptions {
  readonly system: SystemConfig;
  readonly store: MessageStore;
  readonly session: ZkSession;
  readonly zkRoot: string;
  readonly registry: BrokerRegistry;
  readonly logger: Logger;
}

/** See the file comment. */
export class SyncMaster {
  private readonly sys: SystemConfig;
  private readonly logger: Logger;
  private readonly paths: ZkPaths;
  private readonly parts = new Map<PartitionLog, PartState>();
  private readonly watch: ZkWatch;
  private link: MasterLink | undefined;
  private slaveUrl: string | undefined;
  private slaveId: number | undefined;
  private noSlave: string;
  private failures = 0;
  private withdrawn = false;
  private healTimer: NodeJS.Timeout | undefined;
  private healing = false;
  private slaveSeq = 0;
  private closed = false;
  private forwarded = 0;
  private confirmedCount = 0;
  private failedCount = 0;
  private withdrawals = 0;

  private constructor(private readonly o: SyncMasterOptions) {
    this.sys = o.system;
    this.logger = o.logger.child({ component: 'sync-master' });
    this.paths = new ZkPaths(o.zkRoot);
    this.noSlave = `sync replication: no slave of broker ${this.sys.brokerId} is connected, so no put can be stored on both`;
    this.watch = o.session.watchChildren(this.paths.brokerIdDir(this.sys.brokerId), (children) => {
      void this.onSlaves(children ?? []);
    });
  }

  /** Starts watching for the slave; {@link close} stops. */
  static start(options: SyncMasterOptions): SyncMaster {
    const m = new SyncMaster(options);
    m.logger.info({ brokerId: options.system.brokerId, timeoutMs: options.system.sendToSlaveTimeoutInMills },
      'sync replication: puts are answered once the slave stored them too');
    return m;
  }

  // ---- the put path ----

  /** Why a put must be refused before it is appended (no slave to store it); null when it may go ahead. */
  refusal(): string | null {
    if (this.link !== undefined) return null;
    this.failed();
    return this.noSlave;
  }

  /** Forwards the record just appended to `log` at `offset` (data and crc as stored). */
  forward(log: PartitionLog, offset: number, idHi: number, idLo: number, flag: number, data: Buffer, crc: number): void {
    const st = this.state(log);
    const end = offset + RECORD_HEADER_SIZE + data.length;
    const link = this.link;
    this.forwarded++;
    if (link === undefined) {
      this.recordFailed(st, end, this.noSlave);
      return;
    }
    const url = this.slaveUrl;
    // `build` runs inside request(), before it returns: `data` (a view of the request buffer) is copied in time.
    link.request((opaque) => encodeSync({ topic: log.topic, partition: log.partition, flag, msgId: joinId(idHi, idLo),
      checksum: crc, offset, opaque, body: data })).then((res) => {
      if (res.type === 'result' && res.code === 200) this.recordConfirmed(st, end);
      else this.recordFailed(st, end, `slave ${url ?? '?'} answered ${res.type === 'result' ? res.code : res.type}: ` +
        res.body.toString('utf8', 0, Math.min(res.body.length, 300)));
    }, (err: unknown) => this.recordFailed(st, end, `slave ${url ?? '?'}: ${(err as Error).message}`));
  }

  /**
   * `cb(null)` once every record appended to `log` before this call is stored here per the flush policy AND
   * confirmed by the slave; `cb(err)` when either fails (the slave's failure names it).
   */
  whenStored(log: PartitionLog, cb: StoredCallback): void {
    const target = log.endOffset;
    log.whenStored((err) => {
      if (err !== null) { cb(err); return; }
      const st = this.state(log);
      if (st.confirmed >= target) { cb(null); return; }
      const failedEnd = st.failedEnds[0];
      if (failedEnd !== undefined && failedEnd <= target) { cb(slaveFailure(log, st.lastError)); return; }
      st.waitT.push(target);
      st.waitCb.push(cb);
    });
  }

  statsLines(): string[] {
    return [
      'sync_replication true',
      `sync_slave ${this.slaveUrl ?? 'none'}`,
      `sync_slave_id ${this.slaveId ?? -1}`,
      `sync_forwarded ${this.forwarded}`,
      `sync_confirmed ${this.confirmedCount}`,
      `sync_failed ${this.failedCount}`,
      `sync_consecutive_failures ${this.failures}`,
      `sync_publish_withdrawn ${this.withdrawn}`,
      `sync_withdrawals ${this.withdrawals}`,
    ];
  }

  /** Stops forwarding; puts still waiting fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watch.cancel();
    clearInterval(this.healTimer);
    this.link?.close();
    this.link = undefined;
    for (const st of this.parts.values()) failWaiters(st, 0, new Error('sync replication stopped (broker closing)'));
  }

  // ---- confirmations and failures ----

  private state(log: PartitionLog): PartState {
    let st = this.parts.get(log);
    if (st === undefined) {
      st = { confirmed: -1, failedEnds: [], waitT: [], waitCb: [], lastError: '' };
      this.parts.set(log, st);
    }
    return st;
  }

  private recordConfirmed(st: PartState, end: number): void {
    this.confirmedCount++;
    this.failures = 0;
    if (end <= st.confirmed) return;
    st.confirmed = end;
    while (st.failedEnds.length > 0 && st.failedEnds[0]! <= end) st.failedEnds.shift();
    let n = 0;
    while (n < st.waitT.length && st.waitT[n]! <= end) n++;
    if (n === 0) return;
    st.waitT.splice(0, n);
    for (const cb of st.waitCb.splice(0, n)) cb(null);
  }

  private recordFailed(st: PartState, end: number, reason: string): void {
    this.failedCount++;
    if (reason !== st.lastError) this.logger.warn({ reason }, 'the slave did not store a forwarded put');
    st.lastError = reason;
    if (end > st.confirmed) {
      let i = st.failedEnds.length;
      while (i > 0 && st.failedEnds[i - 1]! > end) i--;
      st.failedEnds.splice(i, 0, end);
      // Waiting puts at or past this record may cover it: they fail; those before it wait on.
      const first = st.waitT.findIndex((t) => t >= end);
      if (first >= 0) failWaiters(st, first, new Error(reason));
    }
    this.failed();
  }

  /** Counts one consecutive failure; the threshold withdraws the producers' registrations. */
  private failed(): void {
    this.failures++;
    if (this.withdrawn || this.closed || this.failures < this.sys.slaveContinuousFailureThreshold) return;
    this.withdrawn = true;
    this.withdrawals++;
    this.logger.error({ failures: this.failures, slave: this.slaveUrl ?? 'none' },
      'sync replication: slave failing, withdrawing this master from producers (topics-pub) until it has caught up');
    void this.o.registry.withdrawPublish().catch((err: unknown) => this.logger.warn({ err }, 'withdrawing topics-pub failed'));
    this.healTimer = setInterval(() => { void this.heal(); }, this.sys.checkSlaveIntervalInMills);
    this.healTimer.unref();
  }

  /** Registers for producers again once the slave holds everything this store holds. */
  private async heal(): Promise<void> {
    const link = this.link;
    if (this.healing || link === undefined || this.closed) return;
    this.healing = true;
    try {
      const ends = await readPartitionEnds(link);
      for (const log of this.o.store.partitions()) {
        if (log.endOffset > log.startOffset && (ends.get(`${log.topic}\u0000${log.partition}`) ?? -1) < log.endOffset) return;
      }
      if (this.closed || !this.withdrawn) return;
      clearInterval(this.healTimer);
      this.healTimer = undefined;
      this.withdrawn = false;
      this.failures = 0;
      await this.o.registry.restorePublish();
      this.logger.info({ slave: this.slaveUrl }, 'sync replication: slave caught up, registered for producers again');
    } catch (err) {
      this.logger.debug({ err }, 'slave not healed yet');
    } finally {
      this.healing = false;
    }
  }

  // ---- the slave ----

  private async onSlaves(children: string[]): Promise<void> {
    if (this.closed) return;
    // Only the latest children list counts: an earlier call still reading its slave's URL gives way.
    const seq = ++this.slaveSeq;
    const ids = children.map(parseSlaveNode).filter((n): n is number => n !== undefined).sort((a, b) => a - b);
    const id = ids[0];
    let url: string | undefined;
    if (id !== undefined) {
      const node = await this.o.session.getData(this.paths.brokerSlave(this.sys.brokerId, id)).catch(() => undefined);
      url = node?.data.toString('utf8').trim() || undefined;
    }
    if (this.closed || seq !== this.slaveSeq || url === this.slaveUrl) return;
    this.link?.close();
    this.link = undefined;
    this.slaveUrl = url;
    this.slaveId = url === undefined ? undefined : id;
    if (url === undefined) {
      this.logger.warn('sync replication: no slave registered; puts are refused until one is');
      return;
    }
    this.link = new MasterLink(url, this.sys.sendToSlaveTimeoutInMills);
    this.logger.info({ slave: url, slaveId: id }, 'sync replication: forwarding puts to the slave');
  }
}

function slaveFailure(log: PartitionLog, reason: string): Error {
  return new Error(`sync replication: the slave did not store ${log.topic}-${log.partition}: ${reason}`);
}

function failWaiters(st: PartState, from: number, err: Error): void {
  st.waitT.splice(from);
  for (const cb of st.waitCb.splice(from)) cb(err);
}
