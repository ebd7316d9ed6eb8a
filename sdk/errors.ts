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

/** Stable error codes. */
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
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface MetaqErrorOptions {
  retriable?: boolean;
  cause?: unknown;
}

/** Base class of every error thrown by metaq. */
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

/** Thrown when a frame cannot be parsed; names the parser state and shows a snippet of the bytes. */
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

/** Thrown when a put's checksum does not match the CRC32 of its body. */
export class ChecksumMismatchError extends MetaqError {
  constructor(readonly expected: number, readonly actual: number) {
    super(ErrorCodes.CHECKSUM_MISMATCH,
      `Checksum failure, message may be corrupted: sent ${expected}, computed ${actual}`);
  }
}

/** Thrown when a stored record fails its length or CRC check, on read or during verification. */
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

/** Thrown when a topic matches no configured topic section of the broker. */
export class UnknownTopicError extends MetaqError {
  constructor(readonly topic: string) {
    super(ErrorCodes.UNKNOWN_TOPIC, `The server do not accept topic ${topic}`);
  }
}

/** Thrown when a partition is outside [0, numPartitions) of its topic. */
export class WrongPartitionError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number, readonly numPartitions: number) {
    super(ErrorCodes.WRONG_PARTITION,
      `wrong partition ${partition} for topic ${topic} (it has ${numPartitions} partitions)`);
  }
}

/** Thrown when a message is larger than the configured limit. */
export class MessageTooLargeError extends MetaqError {
  constructor(readonly size: number, readonly limit: number) {
    super(ErrorCodes.MESSAGE_TOO_LARGE, `message of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** Thrown when a partition was closed by an administrator. */
export class PartitionClosedError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number) {
    super(ErrorCodes.PARTITION_CLOSED, `partition ${topic}-${partition} has been closed`);
  }
}

/** Thrown when a write is refused because the disk is (nearly) full. Retriable: space may be freed. */
export class DiskFullError extends MetaqError {
  constructor(readonly path: string, detail: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.DISK_FULL, `disk full at ${path}: ${detail}`, { retriable: true, ...options });
  }
}

/**
 * Thrown when a write or fsync failed. The partition refuses every later write: after a failed fsync the
 * page cache state is unknown, so retrying the fsync and acking would risk acknowledging lost data.
 */
export class FsyncFailedError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.FSYNC_FAILED,
      `partition ${topic}-${partition} refuses writes after a failed write or fsync`, options);
  }
}

/** Thrown for other I/O failures of the store. */
export class StorageError extends MetaqError {
  constructor(message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.STORAGE, message, options);
  }
}

/** Thrown when an offset is outside the log; `nearest` is where to continue. */
export class OffsetOutOfRangeError extends MetaqError {
  constructor(readonly topic: string, readonly partition: number, readonly offset: number,
    readonly nearest: number) {
    super(ErrorCodes.OFFSET_OUT_OF_RANGE,
      `offset ${offset} is outside ${topic}-${partition}; nearest valid offset is ${nearest}`);
  }
}

/** Thrown when configuration is invalid; the message names the key and, when possible, a suggestion. */
export class ConfigError extends MetaqError {
  constructor(message: string) {
    super(ErrorCodes.CONFIG, message);
  }
}

/** Thrown when an operation did not complete in time. */
export class TimeoutError extends MetaqError {
  constructor(message: string) {
    super(ErrorCodes.TIMEOUT, message, { retriable: true });
  }
}

/** Thrown when a connection to a broker failed or was lost. */
export class ConnectionError extends MetaqError {
  constructor(message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.CONNECTION, message, { retriable: true, ...options });
  }
}

/** Thrown when a broker answered with an error status; 5xx answers other than 500 are retriable. */
export class BrokerError extends MetaqError {
  constructor(readonly status: number, readonly body: string) {
    super(ErrorCodes.BROKER, `broker answered ${status}: ${body}`,
      { retriable: status === 503 || status === 504 });
  }
}

/** Thrown when an operation is refused because the component is shutting down. */
export class ShuttingDownError extends MetaqError {
  constructor(what: string) {
    super(ErrorCodes.SHUTTING_DOWN, `${what} is shutting down`, { retriable: true });
  }
}

/** Thrown when an argument is invalid (blank topic, negative size, ...). */
export class InvalidArgumentError extends MetaqError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_ARGUMENT, message);
  }
}

/**
 * Thrown when a message needs a compression codec that is not registered (or whose factory failed), or a record's
 * flag names a compression code that does not exist. Register a kafkajs-style codec factory to fix it, e.g.
 * `CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec` (kafkajs-snappy).
 */
export class UnsupportedCompressionError extends MetaqError {
  constructor(readonly compression: number, message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCodes.CONFIG, message, options);
  }
}
