/**
 * What producers did and what a read-back found, and the checker comparing the two (the Kafka `validate_delivery`
 * idea): lost = acked − read, plus duplicates, corrupt payloads, phantoms, misplaced acks and offset disorder.
 *
 * Each payload identifies itself and carries its own CRC, so a record whose broker CRC happens to match but whose
 * bytes are not what the producer sent is still caught:
 * ```
 * 0  4  magic 'MQK9'
 * 4  4  producer  uint32 BE
 * 8  4  seq       uint32 BE
 * 12 4  crc32 of bytes [16, end)
 * 16 .. filler derived from (producer, seq)
 * ```
 */
import { crc32 } from 'node:zlib';
import { rng } from '../../sdk/protocol/seeded-rng.js';

const MAGIC = 0x4d514b39;
const SEQ_BITS = 2 ** 22;

/** One number per message: producer and seq together. */
export function messageKey(producer: number, seq: number): number {
  return producer * SEQ_BITS + seq;
}

/** A self-describing payload of `size` (>= 16) bytes. */
export function makePayload(producer: number, seq: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt32BE(producer, 4);
  b.writeUInt32BE(seq, 8);
  let x = (messageKey(producer, seq) % 0x7fffffff) | 1;
  for (let i = 16; i < size; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  b.writeUInt32BE(crc32(b.subarray(16)) >>> 0, 12);
  return b;
}

export type ParsedPayload =
  | { readonly kind: 'ok'; readonly key: number }
  | { readonly kind: 'corrupt' }
  | { readonly kind: 'foreign' };

/** Recognizes one of our payloads; 'foreign' when it is not ours at all, 'corrupt' when ours but damaged. */
export function parsePayload(b: Buffer): ParsedPayload {
  if (b.length < 16 || b.readUInt32BE(0) !== MAGIC) return { kind: 'foreign' };
  if ((crc32(b.subarray(16)) >>> 0) !== b.readUInt32BE(12)) return { kind: 'corrupt' };
  return { kind: 'ok', key: messageKey(b.readUInt32BE(4), b.readUInt32BE(8)) };
}

/** Where the broker said it stored a message. */
export interface Ack {
  readonly id: bigint;
  readonly partition: number;
  readonly offset: number;
}

/** Every message sent and how its put ended. */
export class History {
  /** key -> ack, for puts answered 200. */
  readonly acked = new Map<number, Ack>();
  /** Sent and never answered (connection died): may be stored or not. */
  readonly indeterminate = new Set<number>();
  /** Answered with an error code (key -> code): not acknowledged; may be present or absent, but whole. */
  readonly failed = new Map<number, number>();
  /** Not acknowledged but seen in a read-back: from then on it must stay (the broker showed it as stored). */
  readonly seen = new Set<number>();
  private readonly outstanding = new Set<number>();

  sent(key: number): void {
    this.outstanding.add(key);
  }

  ack(key: number, ack: Ack): void {
    this.outstanding.delete(key);
    this.acked.set(key, ack);
  }

  fail(key: number, code: number): void {
    this.outstanding.delete(key);
    this.failed.set(key, code);
  }

  /** Marks every put still unanswered as indeterminate (after the broker was killed). */
  settleOutstanding(): number {
    const n = this.outstanding.size;
    for (const key of this.outstanding) this.indeterminate.add(key);
    this.outstanding.clear();
    return n;
  }

  wasSent(key: number): boolean {
    return this.acked.has(key) || this.indeterminate.has(key) || this.failed.has(key) || this.outstanding.has(key);
  }
}

/** One record read back from a partition. */
export interface ReadRecord {
  readonly partition: number;
  readonly offset: number;
  readonly id: bigint;
  readonly payload: Buffer;
}

export interface CheckReport {
  readonly acked: number;
  readonly read: number;
  /** Acked (or previously seen) and not read. */
  readonly lost: number;
  /** Payloads that are ours but damaged, plus records the broker served with a bad CRC. */
  readonly corrupt: number;
  /** The same message read more than once. */
  readonly duplicates: number;
  /** Read but never sent (or not ours at all). */
  readonly phantom: number;
  /** Read at a partition/offset/id other than its ack said. */
  readonly misplaced: number;
  /** Offsets not strictly increasing within a partition, or a message id used twice. */
  readonly disorder: number;
  readonly indeterminatePresent: number;
  readonly indeterminateAbsent: number;
  /** Up to 10 examples per problem, for the failure message. */
  readonly examples: string[];
}

/**
 * Compares a read-back with the history. `brokerCorrupt` counts records the broker served with a bad record CRC
 * (the read path stops there). Marks present unacknowledged messages as seen in `history` unless `dryRun`.
 */
export function checkReadBack(history: History, records: readonly ReadRecord[], brokerCorrupt = 0, dryRun = false):
CheckReport {
  const examples: string[] = [];
  const note = (what: string): void => { if (examples.length < 10) examples.push(what); };
  const found = new Map<number, ReadRecord>();
  const ids = new Set<bigint>();
  const lastOffset = new Map<number, number>();
  let corrupt = brokerCorrupt;
  let duplicates = 0;
  let phantom = 0;
  let misplaced = 0;
  let disorder = 0;
  for (const r of records) {
    const prev = lastOffset.get(r.partition);
    if (prev !== undefined && r.offset <= prev) { disorder++; note(`offset ${r.offset} after ${prev} in partition ${r.partition}`); }
    lastOffset.set(r.partition, r.offset);
    if (ids.has(r.id)) { disorder++; note(`message id ${r.id} used twice`); }
    ids.add(r.id);
    const p = parsePayload(r.payload);
    if (p.kind === 'corrupt') { corrupt++; note(`corrupt payload at ${r.partition}@${r.offset}`); continue; }
    if (p.kind === 'foreign' || !history.wasSent(p.key)) { phantom++; note(`phantom at ${r.partition}@${r.offset}`); continue; }
    if (found.has(p.key)) { duplicates++; note(`duplicate of key ${p.key} at ${r.partition}@${r.offset}`); continue; }
    found.set(p.key, r);
    const ack = history.acked.get(p.key);
    if (ack !== undefined && (ack.partition !== r.partition || ack.offset !== r.offset || ack.id !== r.id)) {
      misplaced++;
      note(`key ${p.key} acked as ${ack.partition}@${ack.offset} id ${ack.id}, read at ${r.partition}@${r.offset} id ${r.id}`);
    }
  }
  let lost = 0;
  for (const key of history.acked.keys()) if (!found.has(key)) { lost++; note(`acked key ${key} lost`); }
  for (const key of history.seen) if (!found.has(key)) { lost++; note(`key ${key} was read before and is gone`); }
  let indeterminatePresent = 0;
  for (const key of [...history.indeterminate, ...history.failed.keys()]) {
    if (!found.has(key)) continue;
    indeterminatePresent++;
    if (!dryRun) history.seen.add(key);
  }
  const unacked = history.indeterminate.size + history.failed.size;
  return {
    acked: history.acked.size, read: records.length, lost, corrupt, duplicates, phantom, misplaced, disorder,
    indeterminatePresent, indeterminateAbsent: unacked - indeterminatePresent, examples,
  };
}

/** The counts that must all be zero. */
export function checkFailures(r: CheckReport): number {
  return r.lost + r.corrupt + r.duplicates + r.phantom + r.misplaced + r.disorder;
}

/** A small seeded PRNG (mulberry32): `next()` in [0, 1). */
export function seededRandom(seed: number): { next(): number; int(lo: number, hi: number): number } {
  const next = rng(seed);
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) };
}

/** The seed from `envVar`, or a fresh one; printed by the caller. */
export function seedFrom(envVar: string): number {
  const v = process.env[envVar];
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new Error(`${envVar}=${v} is not an integer seed`);
    return n >>> 0;
  }
  return (Math.random() * 2 ** 32) >>> 0;
}
