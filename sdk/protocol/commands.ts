/**
 * The frames of MetaQ 1.4's text protocol, as plain objects.
 *
 * Grammar (one header line ending in CRLF, single spaces between tokens, optional raw body, no trailing CRLF):
 * ```
 * put <topic> <partition> <len> <flag> [<checksum>] [<txKey>] <opaque>\r\n<len bytes>
 * get <topic> <group> <partition> <offset> <maxSize> <opaque>\r\n
 * offset <topic> <group> <partition> <offset> <opaque>\r\n
 * sync <topic> <partition> <len> <flag> <msgId> [<checksum> [<offset>]] <opaque>\r\n<len bytes>
 * transaction <txKey> <sessionId> <type> [<timeoutSec>] [<uniqueQualifier>] <opaque>\r\n
 * stats <item> <opaque>\r\n          (empty item: two spaces)
 * version [<opaque>]\r\n
 * quit\r\n
 * result <code> <len> <opaque>\r\n<len bytes>
 * value <len> <opaque>\r\n<len bytes: a message set>
 * ```
 * Offsets are byte positions (int64 on the wire). They are carried as `number`: every real log offset is
 * below 2^53; a larger wire value (MetaQ clients send Long.MAX_VALUE to mean "the end") decodes as
 * {@link MAX_OFFSET}.
 */

/** Offsets at or beyond 2^53 - 1 (e.g. Java's Long.MAX_VALUE, "start from the end") decode to this. */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/** `opaque` used by `version` and `stats` frames that carry none (Java's Integer.MAX_VALUE). */
export const DEFAULT_OPAQUE = 2147483647;

/** The checksum value meaning "not supplied" in `put`. */
export const NO_CHECKSUM = -1;

export const TransactionTypes = {
  BEGIN: 'BEGIN',
  PREPARE: 'PREPARE',
  COMMIT_ONE_PHASE: 'COMMIT_ONE_PHASE',
  COMMIT_TWO_PHASE: 'COMMIT_TWO_PHASE',
  ROLLBACK: 'ROLLBACK',
  RECOVER: 'RECOVER',
  FORGET: 'FORGET',
  END: 'END',
} as const;
export type TransactionType = (typeof TransactionTypes)[keyof typeof TransactionTypes];

export interface PutRequest {
  readonly type: 'put';
  readonly topic: string;
  /** -1: the broker picks a partition. */
  readonly partition: number;
  readonly flag: number;
  /** CRC32(body) & 0x7fffffff, or {@link NO_CHECKSUM} (also what the old, checksum-less form decodes to). */
  readonly checksum: number;
  readonly transactionKey: string | null;
  readonly opaque: number;
  /** The encoded payload (optional attribute + data); may be a view into the decoder's input. */
  readonly body: Buffer;
}

export interface GetRequest {
  readonly type: 'get';
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
  readonly offset: number;
  readonly maxSize: number;
  readonly opaque: number;
}

export interface OffsetRequest {
  readonly type: 'offset';
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
  readonly offset: number;
  readonly opaque: number;
}

export interface SyncRequest {
  readonly type: 'sync';
  readonly topic: string;
  readonly partition: number;
  readonly flag: number;
  /** The master's message id (int64). */
  readonly msgId: bigint;
  /** {@link NO_CHECKSUM} in MetaQ's 7-token form. */
  readonly checksum: number;
  /**
   * The master's byte offset of the record (our 9-token form): the slave stores it exactly there. Null in MetaQ's
   * 7- and 8-token forms: the slave appends at its local end.
   */
  readonly offset: number | null;
  readonly opaque: number;
  readonly body: Buffer;
}

export interface TransactionRequest {
  readonly type: 'transaction';
  /** null only for RECOVER, which MetaQ's client sends with the key `null`. */
  readonly transactionKey: string | null;
  readonly sessionId: string;
  readonly transactionType: TransactionType;
  /** Seconds; null when absent. */
  readonly timeout: number | null;
  readonly uniqueQualifier: string | null;
  readonly opaque: number;
}

export interface StatsRequest {
  readonly type: 'stats';
  /** '' for the broker summary. */
  readonly item: string;
  readonly opaque: number;
}

export interface VersionRequest {
  readonly type: 'version';
  readonly opaque: number;
}

export interface QuitRequest {
  readonly type: 'quit';
}

/**
 * A well-framed `put` or `sync` whose body is larger than the decoder's `maxBodyBytes`. The decoder discards
 * the body as it arrives (never buffering it) and returns this once the last body byte has passed, so the
 * broker can answer an error and keep the connection.
 */
export interface OversizedRequest {
  readonly type: 'oversized';
  readonly command: 'put' | 'sync';
  readonly topic: string;
  readonly partition: number;
  /** The announced body length in bytes. */
  readonly length: number;
  readonly opaque: number;
}

export type Request =
  | PutRequest
  | GetRequest
  | OffsetRequest
  | SyncRequest
  | TransactionRequest
  | StatsRequest
  | VersionRequest
  | QuitRequest;

/** What a request decoder yields: a request, or the stand-in for one whose body was too large. */
export type DecodedRequest = Request | OversizedRequest;

export interface ResultResponse {
  readonly type: 'result';
  /** HTTP-like status: 200, 301, 400, 403, 404, 500, 503, 504. */
  readonly code: number;
  readonly opaque: number;
  readonly body: Buffer;
}

export interface ValueResponse {
  readonly type: 'value';
  readonly opaque: number;
  /** A raw slice of the partition log; its last record may be cut. */
  readonly body: Buffer;
}

export type Response = ResultResponse | ValueResponse;

/** Status codes used in `result` frames. */
export const Status = {
  OK: 200,
  MOVED: 301,
  BAD_REQUEST: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
  GATEWAY_TIMEOUT: 504,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];
