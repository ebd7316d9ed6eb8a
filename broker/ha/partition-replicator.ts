/**
 * One partition of an async slave: fetches from the master with `get` at the local log's end and appends every
 * whole record exactly as received (length, CRC, message id, flag and DATA unchanged), so that the slave's log is
 * byte-identical to the master's and offsets agree. A new local log starts at the master's first offset (`offset`
 * with 0). The next fetch starts only once the records of the previous one are stored per the slave's flush
 * policy. Nothing is ever skipped: a failure (master gone, corrupt window, store error, a gap) is retried with
 * backoff until it works or the slave stops.
 */
import type { Logger } from 'pino';
import { CorruptRecordError, ErrorCodes, MetaqError, ShuttingDownError } from '../../sdk/errors.js';
import { Status } from '../../sdk/protocol/commands.js';
import { encodeGet, encodeOffset } from '../../sdk/protocol/encode.js';
import { checkRecord, describeRecordCheck, RECORD_HEADER_SIZE, RecordCheck } from '../../sdk/protocol/record.js';
import type { RecordCheckFailure } from '../../sdk/protocol/record.js';
import type { SystemConfig } from '../config/broker-config.js';
import type { MessageStore } from '../store/message-store.js';
import type { PartitionLog } from '../store/partition-log.js';
import { masterError, type MasterLink } from './master-link.js';

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
  /** Resolves after `ms` or when the slave stops. */
  pause(ms: number): Promise<void>;
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** A 404 faster than this means the master did not long-poll. */
const NO_LONG_POLL_MS = 50;

export class PartitionReplicator {
  private backoff = BACKOFF_MIN_MS;
  private maxSize: number;
  private lastError = '';
  readonly done: Promise<void>;

  constructor(readonly topic: string, readonly partition: number, private readonly host: ReplicaHost) {
    this.maxSize = host.system.maxTransferSize;
    this.done = this.run();
  }

  /** The local log's end (where the next fetch starts); undefined before the log exists. */
  get localEnd(): number | undefined {
    return this.host.store.get(this.topic, this.partition)?.endOffset;
  }

  private async run(): Promise<void> {
    while (!this.host.stopped) {
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
        await this.host.pause(this.backoff);
        this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** One fetch and its appends. */
  private async step(link: MasterLink): Promise<void> {
    const log = await this.localLog(link);
    const offset = log.endOffset;
    const t0 = Date.now();
    const res = await link.request((opaque) => encodeGet({ topic: this.topic, group: this.host.system.slaveGroup,
      partition: this.partition, offset, maxSize: this.maxSize, opaque }));
    if (res.type === 'value') {
      await this.append(log, offset, res.body);
      return;
    }
    if (res.code === Status.NOT_FOUND) {
      if (Date.now() - t0 < NO_LONG_POLL_MS) await this.host.pause(this.host.system.slaveMaxDelayInMills);
      return;
    }
    if (res.code === Status.MOVED) {
      const nearest = Number(res.body.toString());
      // Only an empty local log may move: anything else would leave a hole or rewrite history.
      if (Number.isSafeInteger(nearest) && nearest > offset && log.rebaseEmpty(nearest)) {
        this.host.logger.info({ topic: this.topic, partition: this.partition, from: offset, to: nearest },
          'empty local log moved to the master\'s first offset');
        return;
      }
      throw new MetaqError(ErrorCodes.STORAGE, `the master answers 301 ${nearest} for ${this.topic}-${this.partition} ` +
        `at the slave's end ${offset}: the logs diverge (master data deleted before replication, or a different ` +
        'history); not replicating this partition until resolved', { retriable: true });
    }
    throw masterError(res, `get ${this.topic}-${this.partition} at ${offset}`);
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
    return this.host.store.getOrCreate(this.topic, this.partition, start);
  }

  /** Appends the whole records of `window` (fetched at `offset`) byte for byte, then waits until they are stored. */
  private async append(log: PartitionLog, offset: number, window: Buffer): Promise<void> {
    const max = this.host.system.maxMessageSize;
    let pos = 0;
    let records = 0;
    while (pos < window.length) {
      const size = checkRecord(window, pos, window.length, max);
      if (size === RecordCheck.INCOMPLETE_HEADER || size === RecordCheck.INCOMPLETE_DATA) break;
      if (size < 0) {
        throw new CorruptRecordError(this.topic, this.partition, offset + pos, describeRecordCheck(size as RecordCheckFailure));
      }
      if (log.endOffset !== offset + pos) {
        throw new MetaqError(ErrorCodes.STORAGE, `local end of ${this.topic}-${this.partition} moved to ${log.endOffset} ` +
          `while appending the master's record at ${offset + pos}`, { retriable: true });
      }
      log.append(window.readUInt32BE(pos + 8), window.readUInt32BE(pos + 12), window.readInt32BE(pos + 16),
        window.subarray(pos + RECORD_HEADER_SIZE, pos + size), window.readInt32BE(pos + 4));
      pos += size;
      records++;
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
    this.host.replicated(records, pos);
  }
}
