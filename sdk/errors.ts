/**
 * The error hierarchy shared by the SDK and the broker.
 *
 * Every error is a {@link MetaqError} with a stable `code` and a `retriable` flag. Retry logic reads
 * `retriable` only, never the message text. Subclasses carry the context needed to act on them.
 *
 * @example
 * ```ts
 * try { await producer.send(msg); }
 * catch (e) { if (e instanceof MetaqError && e.retriable) scheduleRetry(); else throw e; }
 * ```
 */

/**
 * Stable error codes.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // Unlike the class, `code` survives logs, JSON and process boundaries.
 *   if (e instanceof MetaqError && e.code === ErrorCodes.MESSAGE_TOO_LARGE) splitAndResend(record);
 * }
 * ```
 */
export const ErrorCodes = {
  PROTOCOL: 'PROTOCOL_ERROR',
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  CORRUPT_RECORD: 'CORRUPT_RECORD',
  UNKNOWN_TOPIC: 'UNKNOWN_TOPIC',
  WRONG_PARTITION: 'WRONG_PARTITION',
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  PARTITION_CLOSED: 'PARTITION_CLOSED',
  DISK_FULL: 'DISK_FULL',
  FSYNC_FAILED: 'FSYNC_FAILED',
  STORAGE: 'STORAGE_ERROR',
  OFFSET_OUT_OF_RANGE: 'OFFSET_OUT_OF_RANGE',
  CONFIG: 'CONFIG_ERROR',
  TIMEOUT: 'TIMEOUT',
  CONNECTION: 'CONNECTION_ERROR',
  BROKER: 'BROKER_ERROR',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  COORDINATION: 'COORDINATION_ERROR',
  FENCED: 'FENCED',
  TRANSACTION: 'TRANSACTION_ERROR',
} as const;
/**
 * One of the values of {@link ErrorCodes}: the type of {@link MetaqError.code}.
 *
 * @example
 * ```ts
 * const counts = new Map<ErrorCode, number>();
 * if (e instanceof MetaqError) counts.set(e.code, (counts.get(e.code) ?? 0) + 1);
 * ```
 */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface MetaqErrorOptions {
  retriable?: boolean;
  cause?: unknown;
}

/**
 * Base class of every error thrown by metaq.
 *
 * @example
 * ```ts
 * try { await producer.send(record); }
 * catch (e) {
 *   if (!(e instanceof MetaqError)) throw e;   // not metaq's: e.g. the serializer's own error
 *   if (e.retriable) retryLater(record);       // a resend may duplicate: the first try may have been stored
 *   else log.error({ code: e.code }, e.message);
 * }
 * ```
 */
export class MetaqError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: MetaqErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/**
 * Thrown when a frame cannot be parsed; names the parser state and shows a snippet of the bytes.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // An unparsable reply stream drops the connection: it arrives as the cause of a ConnectionError.
 *   const p = e instanceof ConnectionError && e.cause instanceof ProtocolError ? e.cause : e;
 *   if (p instanceof ProtocolError) log.error({ state: p.state, near: p.snippet }, 'broker reply unreadable');
 * }
 * ```
 */
export class ProtocolError extends MetaqError {
  constructor(
    message: string,
    readonly state: string,
    readonly snippet: string,
    code: ErrorCode = ErrorCodes.PROTOCOL,
  ) {
    super(code, `${message} (state ${state}, near ${JSON.stringify(snippet)})`);
  }
}

/**
 * Thrown when a put's checksum does not match the CRC32 of its body.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // The bytes were damaged between client and broker, which stored nothing: suspect the network path.
 *   if (e instanceof ChecksumMismatchError) log.error({ sent: e.expected, computed: e.actual }, 'payload damaged');
 * }
 * ```
 */
export class ChecksumMismatchError extends MetaqError {
  constructor(readonly expected: number, readonly actual: number) {
    super(ErrorCodes.CHECKSUM_MISMATCH,
      `Checksum failure, message may be corrupted: sent ${expected}, computed ${actual}`);
  }
}

/**
 * Thrown when a stored record fails its length or CRC check, on read or during verification.
 *
 * @example
 * ```ts
 * try { await client.get('orders', 0, offset); }
 * catch (e) {
 *   // Retrying reads the same bytes: repair the log on the broker (`metaq verify` lists the damage).
 *   if (e instanceof CorruptRecordError) log.error({ partition: e.partition, offset: e.offset }, e.reason);
 * }
 * ```
 */
export class CorruptRecordError extends MetaqError {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly reason: string,
    readonly file?: string,
    readonly position?: number,
  ) {
    super(ErrorCodes.CORRUPT_RECORD,
      `Corrupt record in ${topic}-${partition} at offset ${offset}: ${reason}` +
      (file === undefined ? '' : ` (${file} position ${position ?? '?'})`));
  }
}

/**
 * Thrown when a topic matches no configured topic section of the broker.
 *
 * @example
 * ```ts
 * try { await producer.send({ topic: 'ordrs', value: 'x' }); }
 * catch (e) {
 *   // Not retriable: only a `[topic=...]` section in the broker's server.ini fixes it.
 *   if (e instanceof UnknownTopicError) log.error(`broker has no topic ${e.topic}`); else throw e;
 * }
 * ```
 */
export class UnknownTopicError extends MetaqError {
  constructor(readonly topic: string) {
    super(ErrorCodes.UNKNOWN_TOPIC, `The server do not accept topic ${topic}`);
  }
}

/**
 * Thrown when a partition is outside [0, numPartitions) of its topic.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // numPartitions is -1 when a Java MetaQ broker answered: its message does not say.
 *   if (e instanceof WrongPartitionError) log.error(`${e.topic} has no partition ${e.partition} (of ${e.numPartitions})`);
 * }
 * ```
 */
export class WrongPartitionError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number, readonly numPartitions: number) {
    super(ErrorCodes.WRONG_PARTITION,
      `wrong partition ${partition} for topic ${topic} (it has ${numPartitions} partitions)`);
  }
}

/**
 * Thrown when a message is larger than the configured limit.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // Resending cannot help: split the value or raise maxMessageSize on both producer and broker.
 *   if (e instanceof MessageTooLargeError) log.error(`${e.size} bytes over the ${e.limit}-byte limit`);
 * }
 * ```
 */
export class MessageTooLargeError extends MetaqError {
  constructor(readonly size: number, readonly limit: number) {
    super(ErrorCodes.MESSAGE_TOO_LARGE, `message of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/**
 * Thrown when a partition was closed by an administrator.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // Retrying the same partition fails until an administrator reopens it.
 *   if (e instanceof PartitionClosedError) log.warn(`${e.topic}-${e.partition} is closed`);
 * }
 * ```
 */
export class PartitionClosedError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number) {
    super(ErrorCodes.PARTITION_CLOSED, `partition ${topic}-${partition} has been closed`);
  }
}

/**
 * Thrown when a write is refused because the disk is (nearly) full. Retriable: space may be freed.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // e.path is on the broker's host: page its operator, then resend.
 *   if (e instanceof DiskFullError) { alert(`broker disk full at ${e.path}`); retryLater(record); }
 * }
 * ```
 */
export class DiskFullError extends MetaqError {
  constructor(readonly path: string, detail: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.DISK_FULL, `disk full at ${path}: ${detail}`, { retriable: true, ...options });
  }
}

/**
 * Thrown when a write or fsync failed. The partition refuses every later write: after a failed fsync the
 * page cache state is unknown, so retrying the fsync and acking would risk acknowledging lost data.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // Not retriable: this partition refuses writes for the rest of the broker's life; others still accept them.
 *   if (e instanceof FsyncFailedError) alert(`${e.topic}-${e.partition} is read-only until the broker restarts`);
 * }
 * ```
 */
export class FsyncFailedError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.FSYNC_FAILED,
      `partition ${topic}-${partition} refuses writes after a failed write or fsync`, options);
  }
}

/**
 * Thrown for other I/O failures of the store.
 *
 * @example
 * ```ts
 * try { await consumer.commit(); }
 * catch (e) {
 *   // Offset stores mark it retriable when the disk or database may recover; e.cause is the system's error.
 *   if (e instanceof StorageError && e.retriable) retryLater(); else throw e;
 * }
 * ```
 */
export class StorageError extends MetaqError {
  constructor(message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.STORAGE, message, options);
  }
}

/**
 * Thrown when an offset is outside the log; `nearest` is where to continue.
 *
 * @example
 * ```ts
 * try { chunk = await log.read(offset, maxSize); }
 * catch (e) {
 *   if (e instanceof OffsetOutOfRangeError) offset = e.nearest;   // retention removed the start: continue there
 * }
 * ```
 */
export class OffsetOutOfRangeError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number, readonly offset: number,
    readonly nearest: number) {
    super(ErrorCodes.OFFSET_OUT_OF_RANGE,
      `offset ${offset} is outside ${topic}-${partition}; nearest valid offset is ${nearest}`);
  }
}

/**
 * Thrown when configuration is invalid; the message names the key and, when possible, a suggestion.
 *
 * @example
 * ```ts
 * try { client.consumer({ group: 'billing team' }); }   // whitespace is not allowed in a group
 * catch (e) {
 *   if (e instanceof ConfigError) log.error(e.message);   // not retriable: fix the configuration
 * }
 * ```
 */
export class ConfigError extends MetaqError {
  constructor(message: string) {
    super(ErrorCodes.CONFIG, message);
  }
}

/**
 * Thrown when an operation did not complete in time.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // Retriable, but the broker may have stored the record before the answer came late: a resend can duplicate.
 *   if (e instanceof TimeoutError) await producer.send(record);
 * }
 * ```
 */
export class TimeoutError extends MetaqError {
  constructor(message: string) {
    super(ErrorCodes.TIMEOUT, message, { retriable: true });
  }
}

/**
 * Thrown when a connection to a broker failed or was lost.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // The link reconnects by itself; a send in flight when it dropped may or may not be stored.
 *   if (e instanceof ConnectionError) log.warn({ err: e.cause }, 'connection lost; resending');
 * }
 * ```
 */
export class ConnectionError extends MetaqError {
  constructor(message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.CONNECTION, message, { retriable: true, ...options });
  }
}

/**
 * Thrown when a broker answered with an error status; 503 and 504 (busy, timed out) are retriable.
 *
 * @example
 * ```ts
 * catch (e) {
 *   if (e instanceof BrokerError && e.retriable) retryLater(record);   // overloaded: try again later
 *   else if (e instanceof BrokerError) log.error({ status: e.status }, e.body);
 * }
 * ```
 */
export class BrokerError extends MetaqError {
  constructor(readonly status: number, readonly body: string) {
    super(ErrorCodes.BROKER, `broker answered ${status}: ${body}`,
      { retriable: status === 503 || status === 504 });
  }
}

/**
 * Thrown when an operation is refused because the component is shutting down.
 *
 * @example
 * ```ts
 * catch (e) {
 *   // Expected while our own close() runs; from a restarting broker it is retriable.
 *   if (e instanceof ShuttingDownError && closing) return;
 *   throw e;
 * }
 * ```
 */
export class ShuttingDownError extends MetaqError {
  constructor(what: string) {
    super(ErrorCodes.SHUTTING_DOWN, `${what} is shutting down`, { retriable: true });
  }
}

/**
 * Thrown when an argument is invalid (blank topic, negative size, ...).
 *
 * @example
 * ```ts
 * try { await producer.send({ topic: 'bad topic', value: 'x' }); }
 * catch (e) {
 *   if (e instanceof InvalidArgumentError) respond(400, e.message);   // the caller's input; nothing was sent
 * }
 * ```
 */
export class InvalidArgumentError extends MetaqError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_ARGUMENT, message);
  }
}

/**
 * Thrown when a message needs a compression codec that is not registered (or whose factory failed), or a record's
 * flag names a compression code that does not exist. Register a kafkajs-style codec factory to fix it, e.g.
 * `CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec` (kafkajs-snappy).
 *
 * @example
 * ```ts
 * catch (e) {
 *   // Fixed once at startup, not by retrying: the message names the line to add.
 *   if (e instanceof UnsupportedCompressionError) log.error({ compression: e.compression }, e.message);
 * }
 * ```
 */
export class UnsupportedCompressionError extends MetaqError {
  constructor(readonly compression: number, message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.CONFIG, message, options);
  }
}

/**
 * Thrown when a ZooKeeper operation failed: the server is unreachable, the session expired, or a node was not in the
 * expected state. `zkCode` is ZooKeeper's own name for the failure (`NODE_EXISTS`, `NO_NODE`, `BAD_VERSION`,
 * `CONNECTION_LOSS`, `SESSION_EXPIRED`, ...). Retriable unless the node state itself is wrong.
 *
 * @example
 * ```ts
 * catch (e) {
 *   if (e instanceof CoordinationError && e.zkCode === 'NODE_EXISTS') log.warn(e.message);
 * }
 * ```
 */
export class CoordinationError extends MetaqError {
  constructor(readonly zkCode: string, message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.COORDINATION, message, options);
  }
}

/**
 * Thrown when an offset commit is refused because this consumer no longer owns the partition (its ZooKeeper
 * session expired, or a rebalance gave the partition to another consumer, which may have committed since). The
 * commit is dropped on purpose: the current owner's offsets win. Not retriable.
 *
 * @example
 * ```ts
 * catch (e) {
 *   if (e instanceof FencedError) log.info({ partition: e.partition }, 'partition moved to another consumer');
 * }
 * ```
 */
export class FencedError extends MetaqError {
  constructor(readonly group: string, readonly topic: string, readonly partition: string, detail: string) {
    super(ErrorCodes.FENCED, `offset commit of group ${group} for ${topic} ${partition} refused: ${detail}`);
  }
}

/**
 * Thrown when a transaction command fails: the broker refused it (`xaCode` is then the JTA XAException code it sent,
 * e.g. -4 XAER_NOTA for an unknown transaction, -6 XAER_PROTO for a command out of order, 106 XA_RBTIMEOUT for a
 * transaction the broker rolled back on timeout, 8 XA_HEURHAZ for a commit completed only at the broker's next
 * start), or the transaction was used wrongly (committed twice, a send after completion: `xaCode` null). When
 * `outcomeUnknown`, the commit (or rollback) was sent but no answer came: whether it happened is unknown, and for an
 * XA branch `recover()` tells. Retriable only when the outcome is unknown.
 *
 * @example
 * ```ts
 * try { await tx.commit(); }
 * catch (e) {
 *   if (e instanceof TransactionError && e.outcomeUnknown) reconcileLater(tx.key);
 *   else if (e instanceof TransactionError && e.xaCode === 106) log.warn('rolled back by the broker on timeout');
 * }
 * ```
 */
export class TransactionError extends MetaqError {
  constructor(
    /** null for RECOVER, which names no transaction. */
    readonly transactionKey: string | null,
    readonly xaCode: number | null,
    message: string,
    options: MetaqErrorOptions & { outcomeUnknown?: boolean } = {},
  ) {
    super(ErrorCodes.TRANSACTION, message, { retriable: options.outcomeUnknown ?? false, ...options });
    this.outcomeUnknown = options.outcomeUnknown ?? false;
  }

  readonly outcomeUnknown: boolean;
}
