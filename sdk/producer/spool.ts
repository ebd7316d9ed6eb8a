/**
 * The async producer's per-topic spool on local disk: a {@link Journal} in `<recoverDir>/async/<topic>/` holding
 * the messages that could not be sent, in the order they were spooled. It survives a process crash (the journal
 * writes before it resolves; fsync is off, so a power loss may drop the last spooled messages) and the next async
 * producer on the same `recoverDir` resends it.
 *
 * A spooled message (version 1), all integers big-endian:
 * ```
 * 0  1  version (1)
 * 1  1  bits: 0 attribute, 1 key, 2 partition
 * 2  1  compression type
 * 3  ..  [brokerId int32, partition int32] [keyLen int32, key] [attrLen int32, attribute UTF-8] payload
 * ```
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CompressionType } from '../codec/compression.js';
import { StorageError } from '../errors.js';
import type { Partition } from '../message.js';
import { topicNameProblem } from '../protocol/names.js';
import { Journal } from '../storage/journal.js';

const VERSION = 1;
const HAS_ATTRIBUTE = 1;
const HAS_KEY = 2;
const HAS_PARTITION = 4;

/** A message as the spool keeps it: the payload serialized (not compressed) and what chooses its partition. */
export interface SpooledMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly key?: string | Buffer;
  readonly attribute?: string;
  readonly partition?: Partition;
  readonly compression: CompressionType;
}

/**
 * Encodes a message for the spool.
 *
 * @example
 * ```ts
 * decodeSpooled('t', encodeSpooled({ topic: 't', payload: Buffer.from('x'), compression: 0 })).payload; // <Buffer 78>
 * ```
 */
export function encodeSpooled(m: SpooledMessage): Buffer {
  const key = m.key === undefined ? undefined : typeof m.key === 'string' ? Buffer.from(m.key, 'utf8') : m.key;
  const attrLen = m.attribute === undefined ? -1 : Buffer.byteLength(m.attribute, 'utf8');
  const size = 3 + (m.partition === undefined ? 0 : 8) + (key === undefined ? 0 : 4 + key.length) +
    (attrLen < 0 ? 0 : 4 + attrLen) + m.payload.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = VERSION;
  out[1] = (attrLen < 0 ? 0 : HAS_ATTRIBUTE) | (key === undefined ? 0 : HAS_KEY) | (m.partition === undefined ? 0 : HAS_PARTITION);
  out[2] = m.compression;
  let p = 3;
  if (m.partition !== undefined) {
    p = out.writeInt32BE(m.partition.brokerId, p);
    p = out.writeInt32BE(m.partition.partition, p);
  }
  if (key !== undefined) {
    p = out.writeInt32BE(key.length, p);
    p += key.copy(out, p);
  }
  if (attrLen >= 0) {
    p = out.writeInt32BE(attrLen, p);
    p += out.write(m.attribute!, p, 'utf8');
  }
  m.payload.copy(out, p);
  return out;
}

/**
 * Decodes a spooled message; throws StorageError when the bytes are not one (a key comes back as a Buffer).
 *
 * @example
 * ```ts
 * const m = decodeSpooled('orders', record);
 * ```
 */
export function decodeSpooled(topic: string, buf: Buffer): SpooledMessage {
  const bad = (why: string): StorageError => new StorageError(`spooled message of topic ${topic} is unreadable: ${why}`);
  if (buf.length < 3 || buf[0] !== VERSION) throw bad(`version ${buf[0]} (expected ${VERSION})`);
  const bits = buf[1]!;
  let p = 3;
  const need = (n: number): void => {
    if (p + n > buf.length) throw bad(`cut at byte ${p}`);
  };
  let partition: Partition | undefined;
  if ((bits & HAS_PARTITION) !== 0) {
    need(8);
    partition = { brokerId: buf.readInt32BE(p), partition: buf.readInt32BE(p + 4) };
    p += 8;
  }
  let key: Buffer | undefined;
  if ((bits & HAS_KEY) !== 0) {
    need(4);
    const n = buf.readInt32BE(p);
    p += 4;
    need(n);
    key = buf.subarray(p, p + n);
    p += n;
  }
  let attribute: string | undefined;
  if ((bits & HAS_ATTRIBUTE) !== 0) {
    need(4);
    const n = buf.readInt32BE(p);
    p += 4;
    need(n);
    attribute = buf.toString('utf8', p, p + n);
    p += n;
  }
  return {
    topic, payload: buf.subarray(p), compression: buf[2]! as CompressionType,
    ...(key === undefined ? {} : { key }),
    ...(attribute === undefined ? {} : { attribute }),
    ...(partition === undefined ? {} : { partition }),
  };
}

/**
 * One topic's spool: the journal of its spooled messages.
 *
 * @example
 * ```ts
 * const spool = await Spool.open(recoverDir, 'orders', logger);
 * await spool.append(encodeSpooled(message));
 * for await (const { seq, record } of spool.entries()) { await resend(record); await spool.remove(seq); }
 * ```
 */
export class Spool {
  private constructor(readonly topic: string, private readonly journal: Journal) {}

  /** `<recoverDir>/async` */
  static root(recoverDir: string): string {
    return join(recoverDir, 'async');
  }

  /** Opens (creating) the spool of `topic`. */
  static async open(recoverDir: string, topic: string, logger: Logger): Promise<Spool> {
    const journal = await Journal.open(join(Spool.root(recoverDir), topic), { fsync: false, logger });
    return new Spool(topic, journal);
  }

  /** The topics that have a spool directory under `recoverDir` (empty when there is none). */
  static async topics(recoverDir: string): Promise<string[]> {
    try {
      const names = await readdir(Spool.root(recoverDir), { withFileTypes: true });
      return names.filter((d) => d.isDirectory() && topicNameProblem(d.name) === undefined).map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  /** Messages in the spool (written ones). */
  get size(): number {
    return this.journal.size;
  }

  /** Appends an encoded message (its place in the order is taken now); resolves once it is written. */
  append(record: Buffer): Promise<number> {
    return this.journal.append(record);
  }

  /** The spooled messages in order (those written when the iteration started). */
  entries(): AsyncGenerator<{ readonly seq: number; readonly record: Buffer }, void, undefined> {
    return this.journal.entries();
  }

  /** Removes a message that was sent (or given up on). */
  async remove(seq: number): Promise<void> {
    await this.journal.remove(seq);
  }

  close(): Promise<void> {
    return this.journal.close();
  }
}
