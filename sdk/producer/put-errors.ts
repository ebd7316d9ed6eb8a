/**
 * Turns a failed `put` reply into a typed error. MetaQ answers every put failure with
 * `result <code> <len> <opaque>\r\n` and a text body
 *
 * ```
 * Put message to [broker '<url>'] [partition '<topic>-<partition>'] failed.Detail:<reason>
 * ```
 *
 * (403 for a closed partition, 500 for the rest; 503/504 from the transport layer). The reason is the broker
 * exception's message, so it is matched against the messages of the errors in sdk/errors.ts that the broker's
 * store throws (broker/server/put-handler.ts, broker/store/message-store.ts, partition-log.ts).
 */
import {
  BrokerError, ChecksumMismatchError, DiskFullError, FsyncFailedError, MessageTooLargeError, MetaqError,
  PartitionClosedError, ShuttingDownError, UnknownTopicError, WrongPartitionError,
} from '../errors.js';

const DETAIL = 'failed.Detail:';
const UNKNOWN_TOPIC = /^The server do not accept topic (\S+)/;
const WRONG_PARTITION = /^wrong partition (-?\d+) for topic \S+ \(it has (\d+) partitions\)/;
const WRONG_PARTITION_JAVA = /^wrong partition (-?\d+)/;
const TOO_LARGE = /^message of (\d+) bytes exceeds (?:the limit of|maxMessageSize) (\d+)/;
const CLOSED = /has been closed/i;
const DISK_FULL = /^disk full at (.*?): (.*)$/;
const FSYNC = /refuses writes after a failed write or fsync/;
const SHUTTING_DOWN = /^(.*) is shutting down$/;
const CHECKSUM = /^Checksum failure,\s*message may be corrupted: sent (-?\d+), computed (-?\d+)/;

/**
 * The error a `put` answered with `code` and `body` stands for.
 *
 * @example
 * ```ts
 * putError(500, "Put message to [broker 'meta://h:8123'] [partition 'x-0'] failed.Detail:The server do not accept topic x", 'x', 0);
 * // => UnknownTopicError { topic: 'x' }
 * ```
 */
export function putError(code: number, body: string, topic: string, partition: number): MetaqError {
  const at = body.indexOf(DETAIL);
  const detail = at < 0 ? body : body.slice(at + DETAIL.length);
  if (code === 403 || CLOSED.test(detail)) return new PartitionClosedError(topic, partition);
  if (code === 503 || code === 504) return new BrokerError(code, body);
  let m: RegExpExecArray | null;
  if ((m = UNKNOWN_TOPIC.exec(detail)) !== null) return new UnknownTopicError(m[1]!);
  if ((m = WRONG_PARTITION.exec(detail)) !== null) return new WrongPartitionError(topic, Number(m[1]), Number(m[2]));
  if ((m = WRONG_PARTITION_JAVA.exec(detail)) !== null) return new WrongPartitionError(topic, Number(m[1]), -1);
  if ((m = TOO_LARGE.exec(detail)) !== null) return new MessageTooLargeError(Number(m[1]), Number(m[2]));
  if ((m = DISK_FULL.exec(detail)) !== null) return new DiskFullError(m[1]!, m[2]!);
  if (FSYNC.test(detail)) return new FsyncFailedError(topic, partition);
  if ((m = CHECKSUM.exec(detail)) !== null) return new ChecksumMismatchError(Number(m[1]), Number(m[2]));
  if ((m = SHUTTING_DOWN.exec(detail)) !== null) return new ShuttingDownError(m[1]!);
  return new BrokerError(code, body);
}
