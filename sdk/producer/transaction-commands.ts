/**
 * The wire side of producer transactions, shared by local transactions and XA branches: the `transaction` command
 * (answers as MetaQ's TransactionProcessor gives them: 200 with an empty body, a PREPARE vote, or RECOVER's keys
 * joined by CRLF; failures as `500 XAException:code=<n>,msg=<m>`), puts carrying a transaction key (answered
 * `<msgId> <partition> -1`), and the session id of a producer.
 */
import { hostname } from 'node:os';
import type { Link } from '../cluster/broker-router.js';
import { ConnectionError, InvalidArgumentError, MetaqError, TimeoutError, TransactionError } from '../errors.js';
import type { Partition, ProducerRecord, SendResult } from '../message.js';
import type { Response, TransactionType } from '../protocol/commands.js';
import { encodePut, encodeTransaction } from '../protocol/encode.js';
import { parsePutResult } from '../protocol/message-id.js';
import { crc32Masked } from '../protocol/record.js';
import { putError } from './put-errors.js';

export { XaCodes } from '../protocol/xa-codes.js';

/** A record of a transaction, encoded and placed: what the producer hands to a transaction to put. */
export interface TransactionalPut {
  readonly topic: string;
  readonly partition: Partition;
  readonly flag: number;
  readonly data: Buffer;
  /** The producer's send timeout. */
  readonly timeoutMs: number;
}

/** What a transaction needs from its producer. */
export interface TransactionHost<V> {
  /** Encodes `record`; without an explicit partition it is picked among the partitions of `brokerId` if given. */
  encodeForTransaction(record: ProducerRecord<V>, brokerId: number | undefined): Promise<TransactionalPut>;
  /** The link to a broker (throws ConnectionError when the broker is unknown). */
  link(brokerId: number): Link;
  /** Ids of every known broker. */
  brokerIds(): readonly number[];
  /** Timeout of transaction commands. */
  readonly requestTimeoutMs: number;
  /** `<host>-<ms>-<seq>`: the producer's session id. */
  readonly sessionId: string;
}

/** What a command needs of its producer. */
export type CommandHost = Pick<TransactionHost<never>, 'sessionId' | 'requestTimeoutMs'>;

const XA_BODY = /^XAException:code=(-?\d+),msg=([\s\S]*)$/;
let sessionSeq = 0;

/**
 * A new session id, `<host>-<ms>-<seq>`, as MetaQ's IdGenerator makes them. Characters that would break the key
 * (`:` of an IPv6-looking host, whitespace) become `_`.
 */
export function newSessionId(): string {
  return `${hostTag()}-${Date.now()}-${++sessionSeq}`;
}

/** This host's name as a part of a transaction key: `:` and whitespace become `_`. */
export function hostTag(): string {
  return hostname().replace(/[:\s]/g, '_') || 'localhost';
}

/** Checks a transaction timeout in seconds (0: none; the broker caps it at its `maxTxTimeoutInSeconds`). */
export function checkTimeoutSec(t: number): number {
  if (!Number.isInteger(t) || t < 0 || t > 0x7fffffff) {
    throw new InvalidArgumentError(`a transaction timeout is a whole number of seconds >= 0, got ${t}`);
  }
  return t;
}

export interface CommandOptions {
  readonly timeoutSec?: number | null;
  readonly uniqueQualifier?: string | null;
  /** A lost answer leaves the outcome unknown (commit, rollback, prepare). */
  readonly decisive?: boolean;
}

/** Sends one `transaction` command and resolves with the body of its `200` answer. */
export async function transactionCommand(host: CommandHost, link: Link, key: string | null, type: TransactionType,
  options: CommandOptions = {}): Promise<string> {
  let reply: Response;
  try {
    reply = await link.request((opaque) => encodeTransaction({
      transactionKey: key, sessionId: host.sessionId, transactionType: type, timeout: options.timeoutSec ?? null,
      uniqueQualifier: options.uniqueQualifier ?? null, opaque,
    }), host.requestTimeoutMs);
  } catch (e) {
    if (options.decisive === true && (e instanceof TimeoutError || e instanceof ConnectionError)) {
      throw new TransactionError(key, null, `${type} of ${key} was sent to ${link.url} but not answered ` +
        `(${e.message}): the outcome is unknown`, { outcomeUnknown: true, cause: e });
    }
    throw e;
  }
  const body = reply.body.toString('utf8');
  if (reply.type === 'result' && reply.code === 200) return body;
  throw brokerRefusal(key, type, reply.type === 'result' ? reply.code : 0, body);
}

/** Sends `END` (one way: the broker never answers it). */
export function endCommand(host: CommandHost, link: Link, key: string): void {
  link.send(encodeTransaction({ transactionKey: key, sessionId: host.sessionId, transactionType: 'END', opaque: 0 }));
}

/** Puts one record inside the transaction `key`; resolves with its id and partition (offset -1: stored at commit). */
export async function transactionalPut(link: Link, put: TransactionalPut, key: string): Promise<SendResult> {
  const { topic, partition } = put;
  const reply = await link.request((opaque) => encodePut({
    topic, partition: partition.partition, flag: put.flag, checksum: crc32Masked(put.data), transactionKey: key,
    opaque, body: put.data,
  }), put.timeoutMs);
  if (reply.type === 'result' && reply.code === 200) {
    const ack = parsePutResult(reply.body);
    return { topic, id: ack.id, partition, offset: ack.offset };
  }
  const body = reply.body.toString('utf8');
  if (XA_BODY.test(body)) throw brokerRefusal(key, 'put', 500, body);
  throw putError(reply.type === 'result' ? reply.code : 500, body, topic, partition.partition);
}

function brokerRefusal(key: string | null, what: string, code: number, body: string): MetaqError {
  const m = XA_BODY.exec(body);
  if (m !== null) return new TransactionError(key, Number(m[1]), `${what} of ${key} failed: ${m[2]} (XA code ${m[1]})`);
  return new TransactionError(key, null, `${what} of ${key} failed: broker answered ${code}: ${body}`);
}
