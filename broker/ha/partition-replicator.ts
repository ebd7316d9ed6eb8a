/**
 * One partition of a slave: fetches from the master with `get` at the local log's end and puts every whole record
 * at its offset with {@link replicaAppend} (length, CRC, message id, flag and DATA unchanged), so that the slave's
 * log is byte-identical to the master's and offsets agree. A new local log starts at the master's first offset
 * (`offset` with 0). The next fetch starts only once the records of the previous one are stored per the slave's
 * flush policy. Nothing is ever skipped: a failure (master gone, corrupt window, store error, a gap) is retried with
 * backoff until it works or the slave stops.
 *
 * Beside the master's `sync` pushes (sync-handler.ts): a record a push already stored is found "present" and
 * skipped. While pushes keep the partition current ({@link pushed} within `slaveMaxDelayInMills`), fetching pauses,
 * so records are not transferred twice; it resumes at once when a push lands beyond the local end and waits for the
 * gap ({@link awaitEnd}), or when the pushes stop.
 *
 * Before the first fetch from a master (a node rejoining after a failover, or any new master link), the local log is
 * compared with the master's: a divergent tail (the old master's records the new one never got) is cut, and the
 * store logs the discarded range.
 */
import type { Logger } from 'pino';
import { CorruptRecordError, ErrorCodes, MetaqError, OffsetOutOfRangeError, ShuttingDownError } from '../../sdk/errors.js';
import { Status } from '../../sdk/protocol/commands.js';
import { encodeGet, encodeOffset } from '../../sdk/protocol/encode.js';
import { checkRecord, describeRecordCheck, RECORD_HEADER_SIZE, RecordCheck } from '../../sdk/protocol/record.js';
import type { RecordCheckFailure } from '../../sdk/protocol/record.js';
import type { SystemConfig } from '../config/broker-config.js';
import type { MessageStore, TruncateReport } from '../store/message-store.js';
import type { PartitionLog } from '../store/partition-log.js';
import { findDivergence } from './divergence.js';
import { masterError, readPartitionEnds, type MasterLink } from './master-link.js';
import { replicaAppend, type ReplicaRecord } from './replica-append.js';

/** What a partition loop needs from the slave replicator. */
export interface ReplicaHost {
  readonly store: MessageStore;
  readonly logger: Logger;
  /**
   * The slave's own section: `slaveGroup` (the group it fetches as), `maxTransferSize` (the fetch window, grown for
   * a record larger than it), `maxMessageSize`, `slaveMaxDelayInMills` (pause after an immediate 404: a master that
   * does not long-poll).
   */
  readonly system: SystemConfig;
  readonly stopped: boolean;
  /** The link to the live master; waits while there is none. Rejects once the slave stops. */
  masterLink(): Promise<MasterLink>;
  /** Counts replicated records and bytes. */
  replicated(records: number, bytes: number): void;
  fetchFailed(): void;
  /** A divergent local tail was cut (store.truncate logged the range): the slave must catch up before promotion. */
  tailCut(report: TruncateReport): void;
  /** Resolves after `ms` or when the slave stops. */
  pause(ms: number): Promise<void>;
}

const BACKOFF_MIN_MS = 100;
const EMPTY = Buffer.alloc(0);
const BACKOFF_MAX_MS = 5000;
/** A 404 faster than this means the master did not long-poll. */
const NO_LONG_POLL_MS = 50;

interface EndWaiter {
  readonly offset: number;
  readonly resolve: (reached: boolean) => void;
}

/** A fetched record, reused for every record (the window is walked synchronously between awaits). */
interface MutableRecord { idHi: number; idLo: number; flag: number; data: Buffer; crc: number }

export class PartitionReplicator {
  private backoff = BACKOFF_MIN_MS;
  private maxSize: number;
  private lastError = '';
  /** When the last push of the master arrived (ms since epoch). */
  private lastPushAt = 0;
  private readonly waiters: EndWaiter[] = [];
  private wakeUp: (() => void) | undefined;
  private finished = false;
  private readonly rec: MutableRecord = { idHi: 0, idLo: 0, flag: 0, data: Buffer.alloc(0), crc: 0 };
  /** The master link the local log was last compared with (its divergent tail cut). */
  reconciledWith: MasterLink | undefined;
  readonly done: Promise<void>;

  constructor(readonly topic: string, readonly partition: number, private readonly host: ReplicaHost) {
    this.maxSize = host.system.maxTransferSize;
    this.done = this.run().finally(() => {
      this.finished = true;
      for (const w of this.waiters.splice(0)) w.resolve(false);
    });
  }

  /** A push of the master arrived for this partition: fetching pauses while they keep coming. */
  pushed(): void {
    this.lastPushAt = Date.now();
  }

  /**
   * Resolves true once the local log's end reaches `offset` (fetching resumes at once to fill the gap), false after
   * `timeoutMs`, on `signal`'s abort, or when the slave stops.
   */
  awaitEnd(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if ((this.localEnd ?? -1) >= offset) return Promise.resolve(true);
    if (this.finished || signal?.aborted === true) return Promise.resolve(false);
    return new Promise((resolve) => {
      const log = this.host.store.get(this.topic, this.partition);
      // Pushes appending at the end move it too: look again whenever the log's readable end advances.
      const unsubscribe = log?.onReadable(() => this.noteEnd());
      const timer = setTimeout(() => finish(false), timeoutMs);
      const onAbort = (): void => finish(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      const waiter: EndWaiter = { offset, resolve: (reached) => finish(reached) };
      const finish = (reached: boolean): void => {
        const i = this.waiters.indexOf(waiter);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        clearTimeout(timer);
        unsubscribe?.();
        signal?.removeEventListener('abort', onAbort);
        resolve(reached);
      };
      this.waiters.push(waiter);
      this.wake();
    });
  }

  /** Releases the waiters whose offset the local end has reached. */
  private noteEnd(): void {
    if (this.waiters.length === 0) return;
    const end = this.localEnd ?? -1;
    for (const w of this.waiters.filter((x) => x.offset <= end)) w.resolve(true);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /** Pauses `ms`, ended early by {@link wake} or the slave's stop. */
  private async sleep(ms: number): Promise<void> {
    await Promise.race([this.host.pause(ms), new Promise<void>((resolve) => { this.wakeUp = resolve; })]);
    this.wakeUp = undefined;
  }

  /** How long fetching should still pause: pushes keep the log current unless one waits for a gap. */
  private quietMs(): number {
    if (this.waiters.length > 0) return 0;
    return this.lastPushAt + this.host.system.slaveMaxDelayInMills - Date.now();
  }

  /** The local log's end (where the next fetch starts); undefined before the log exists. */
  get localEnd(): number | undefined {
    return this.host.store.get(this.topic, this.partition)?.endOffset;
  }

  private async run(): Promise<void> {
    while (!this.host.stopped) {
      const quiet = this.quietMs();
      if (quiet > 0) {
        await this.sleep(quiet);
        continue;
      }
      let link: MasterLink;
      try {
        link = await this.host.masterLink();
      } catch {
        return;
      }
      try {
        await this.step(link);
        this.backoff = BACKOFF_MIN_MS;
        this.lastError = '';
      } catch (err) {
        if (this.host.stopped) return;
        // The master went away (or moved) under this request: wait for the next link, no error.
        if (err instanceof ShuttingDownError) continue;
        this.host.fetchFailed();
        const message = (err as Error).message;
        // One line per distinct failure, not one per retry.
        if (message !== this.lastError) {
          this.host.logger.warn({ err, topic: this.topic, partition: this.partition, retryInMs: this.backoff },
            'replication from the master failed; retrying');
          this.lastError = message;
        }
        await this.sleep(this.backoff);
        this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** One fetch and its appends. */
  private async step(link: MasterLink): Promise<void> {
    const log = await this.localLog(link);
    if (this.reconciledWith !== link) {
      await this.reconcile(link, log);
      this.reconciledWith = link;
    }
    const offset = log.endOffset;
    const t0 = Date.now();
    const res = await link.request((opaque) => encodeGet({ topic: this.topic, group: this.host.system.slaveGroup,
      partition: this.partition, offset, maxSize: this.maxSize, opaque }));
    if (res.type === 'value') {
      await this.append(log, offset, res.body);
      return;
    }
    if (res.code === Status.NOT_FOUND) {
      if (Date.now() - t0 < NO_LONG_POLL_MS) await this.sleep(this.host.system.slaveMaxDelayInMills);
      return;
    }
    if (res.code === Status.MOVED) {
      const nearest = Number(res.body.toString());
      // Only an empty local log may move: anything else would leave a hole or rewrite history.
      if (Number.isSafeInteger(nearest) && nearest > offset && log.rebaseEmpty(nearest)) {
        this.host.logger.info({ topic: this.topic, partition: this.partition, from: offset, to: nearest },
          'empty local log moved to the master\'s first offset');
        this.noteEnd();
        return;
      }
      throw new MetaqError(ErrorCodes.STORAGE, `the master answers 301 ${nearest} for ${this.topic}-${this.partition} ` +
        `at the slave's end ${offset}: the logs diverge (master data deleted before replication, or a different ` +
        'history); not replicating this partition until resolved', { retriable: true });
    }
    throw masterError(res, `get ${this.topic}-${this.partition} at ${offset}`);
  }

  /** Cuts the local log where it parts from the master's (broker/ha/divergence.ts). */
  private async reconcile(link: MasterLink, log: PartitionLog): Promise<void> {
    const masterEnd = (await readPartitionEnds(link)).get(`${this.topic}\u0000${this.partition}`);
    if (masterEnd === undefined || log.endOffset === log.startOffset) return;
    const readMaster = async (offset: number, maxSize: number): Promise<Buffer> => {
      const res = await link.request((opaque) => encodeGet({ topic: this.topic, group: this.host.system.slaveGroup,
        partition: this.partition, offset, maxSize, opaque }));
      if (res.type === 'value') return res.body;
      if (res.code === Status.NOT_FOUND) return EMPTY;
      if (res.code === Status.MOVED) throw new OffsetOutOfRangeError(this.topic, this.partition, offset, Number(res.body.toString()));
      throw masterError(res, `get ${this.topic}-${this.partition} at ${offset}`);
    };
    const cut = await findDivergence(log, readMaster, masterEnd);
    if (cut === undefined) return;
    this.host.logger.warn({ topic: this.topic, partition: this.partition, cut, localEnd: log.endOffset, masterEnd },
      'divergent tail: the local log parts from the master\'s; cutting it');
    this.host.tailCut(await this.host.store.truncate(this.topic, this.partition, cut));
  }

  /** The local log, created at the master's first offset when the slave has none. */
  private async localLog(link: MasterLink): Promise<PartitionLog> {
    const existing = this.host.store.get(this.topic, this.partition);
    if (existing !== undefined) return existing;
    const body = await link.requestOk((opaque) => encodeOffset({ topic: this.topic, group: this.host.system.slaveGroup,
      partition: this.partition, offset: 0, opaque }), `offset ${this.topic}-${this.partition}`);
    const start = Number(body.toString());
    if (!Number.isSafeInteger(start) || start < 0) throw new MetaqError(ErrorCodes.BROKER, `master's first offset ${body.toString()}`);
    // Throws UnknownTopicError / WrongPartitionError when the slave's topic sections do not accept the partition.
    const log = this.host.store.getOrCreate(this.topic, this.partition, start);
    this.noteEnd();
    return log;
  }

  /**
   * Puts the whole records of `window` (fetched at `offset`) at their offsets, then waits until they are stored.
   * Records already there (stored by pushes meanwhile) are checked and skipped.
   */
  private async append(log: PartitionLog, offset: number, window: Buffer): Promise<void> {
    const max = this.host.system.maxMessageSize;
    const rec = this.rec;
    let pos = 0;
    let records = 0;
    let appended = 0;
    let bytes = 0;
    try {
      while (pos < window.length) {
        const size = checkRecord(window, pos, window.length, max);
        if (size === RecordCheck.INCOMPLETE_HEADER || size === RecordCheck.INCOMPLETE_DATA) break;
        if (size < 0) {
          throw new CorruptRecordError(this.topic, this.partition, offset + pos, describeRecordCheck(size as RecordCheckFailure));
        }
        rec.crc = window.readInt32BE(pos + 4);
        rec.idHi = window.readUInt32BE(pos + 8);
        rec.idLo = window.readUInt32BE(pos + 12);
        rec.flag = window.readInt32BE(pos + 16);
        rec.data = window.subarray(pos + RECORD_HEADER_SIZE, pos + size);
        const placed = replicaAppend(log, offset + pos, rec as ReplicaRecord);
        if (placed === 'appended') {
          appended++;
          bytes += size;
        } else if (placed === 'ahead') {
          throw new MetaqError(ErrorCodes.STORAGE, `local end of ${this.topic}-${this.partition} moved back to ` +
            `${log.endOffset} while storing the master's record at ${offset + pos}`, { retriable: true });
        } else {
          this.noteEnd();
          await placed;
        }
        pos += size;
        records++;
      }
    } finally {
      rec.data = EMPTY;
      this.noteEnd();
    }
    if (records === 0) {
      // A record larger than the window: fetch at least all of it next time.
      const need = window.length >= 4 ? RECORD_HEADER_SIZE + window.readInt32BE(0) : this.maxSize * 2;
      this.maxSize = Math.min(Math.max(need, this.maxSize * 2), max + RECORD_HEADER_SIZE);
      return;
    }
    this.maxSize = this.host.system.maxTransferSize;
    const err = await new Promise<Error | null>((resolve) => log.whenStored(resolve));
    if (err !== null) throw err;
    this.host.replicated(appended, bytes);
  }
}
