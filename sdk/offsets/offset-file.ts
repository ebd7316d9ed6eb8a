/**
 * The local offsets file: MetaQ's LocalOffsetStorage format, one JSON object mapping each group to its list of
 * committed positions.
 *
 * ```
 * file    = { <group>: [ entry, ... ], ... }
 * entry   = { "offset": <integer>, "partition": { "partition": <int>, "brokerId": <int> }, "topic": <string>,
 *             "msgId": "<int64 as decimal string>" }
 * ```
 *
 * MetaQ writes no `msgId`; MetaQ 1.4 writes `messageId` (and `modified`) as JSON numbers, which lose precision
 * above 2^53 in JavaScript, so {@link parseOffsetFile} reads those digits as text before JSON.parse sees them. Our
 * files carry `msgId` as a string and no `messageId`, and MetaQ's reader ignores fields it does not know.
 */
import { ConfigError, InvalidArgumentError } from '../errors.js';
import { partitionName } from '../message.js';
import type { CommittedOffset } from './offset-store.js';

/** group → (topic + partition name) → offset, in insertion order so rewrites keep the file stable. */
export type OffsetMap = Map<string, Map<string, CommittedOffset>>;

/** The key of one entry within its group. */
export function entryKey(topic: string, partition: CommittedOffset['partition']): string {
  return `${topic}\u0000${partitionName(partition)}`;
}

// Only matches a real `"messageId":` key: inside a JSON string every quote is escaped, so `\"messageId\":` has a
// backslash where this pattern needs the closing quote.
const NUMERIC_MESSAGE_ID = /"messageId"(\s*):(\s*)(-?\d+)/g;

function fail(file: string, why: string, cause?: unknown): never {
  const err = new ConfigError(`offsets file ${file} is unreadable: ${why}. Offsets were NOT reset: fix or move the ` +
    'file (MetaQ/metaq JSON format: {"<group>":[{"offset":0,"partition":{"partition":0,"brokerId":0},' +
    '"topic":"<topic>"}]})');
  if (cause !== undefined) Object.defineProperty(err, 'cause', { value: cause });
  throw err;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  // MetaQ reads the offset through Long.valueOf(String.valueOf(x)), so a quoted number is valid too.
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}

function int64(v: unknown): bigint | undefined {
  if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) return BigInt(v);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return undefined;
}

function parseEntry(file: string, group: string, i: number, raw: unknown): CommittedOffset {
  const where = `entry ${i} of group ${JSON.stringify(group)}`;
  if (!isRecord(raw)) fail(file, `${where} is not an object`);
  const { topic, partition: p } = raw;
  if (typeof topic !== 'string' || topic === '') fail(file, `${where} has no topic`);
  if (!isRecord(p)) fail(file, `${where} has no partition object`);
  const brokerId = int(p.brokerId);
  const partition = int(p.partition);
  if (brokerId === undefined || brokerId < 0 || partition === undefined || partition < 0) {
    fail(file, `${where} has a bad partition ${JSON.stringify(p)}`);
  }
  const offset = int(raw.offset);
  if (offset === undefined || offset < 0) fail(file, `${where} has a bad offset ${JSON.stringify(raw.offset)}`);
  const idText = raw.msgId ?? raw.messageId;
  const msgId = idText === undefined ? -1n : int64(idText);
  if (msgId === undefined) fail(file, `${where} has a bad msgId ${JSON.stringify(idText)}`);
  return { topic, partition: { brokerId, partition }, offset, msgId };
}

/**
 * Parses the file's text. Empty text (MetaQ creates an empty file on first use) is an empty map.
 *
 * @throws ConfigError naming the file and what is wrong with it.
 *
 * @example
 * ```ts
 * const map = parseOffsetFile('{"g":[{"offset":0,"partition":{"partition":0,"brokerId":100},"topic":"t"}]}', 'f');
 * map.get('g')?.size; // 1
 * ```
 */
export function parseOffsetFile(text: string, file: string): OffsetMap {
  const map: OffsetMap = new Map();
  if (text.trim() === '') return map;
  let root: unknown;
  try {
    root = JSON.parse(text.replace(NUMERIC_MESSAGE_ID, '"messageId"$1:$2"$3"'));
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message})`, e);
  }
  if (!isRecord(root)) fail(file, 'the top level is not an object of groups');
  for (const [group, list] of Object.entries(root)) {
    // Jackson writes a group whose list was null as null; MetaQ treats it as empty.
    if (list === null) continue;
    if (!Array.isArray(list)) fail(file, `group ${JSON.stringify(group)} is not a list`);
    const entries = new Map<string, CommittedOffset>();
    list.forEach((raw: unknown, i) => {
      const e = parseEntry(file, group, i, raw);
      entries.set(entryKey(e.topic, e.partition), e);
    });
    map.set(group, entries);
  }
  return map;
}

/**
 * The file's text for a map: MetaQ's layout plus `msgId` as a decimal string.
 *
 * @example
 * ```ts
 * formatOffsetFile(new Map([['g', new Map([['k', { topic: 't', partition: { brokerId: 0, partition: 1 },
 *   offset: 10, msgId: 7n }]])]]));
 * // '{"g":[{"offset":10,"partition":{"partition":1,"brokerId":0},"topic":"t","msgId":"7"}]}'
 * ```
 */
export function formatOffsetFile(map: OffsetMap): string {
  const out: Record<string, unknown[]> = {};
  for (const [group, entries] of map) {
    const list: unknown[] = [];
    for (const e of entries.values()) {
      list.push({
        offset: e.offset,
        partition: { partition: e.partition.partition, brokerId: e.partition.brokerId },
        topic: e.topic,
        msgId: e.msgId.toString(),
      });
    }
    out[group] = list;
  }
  return JSON.stringify(out);
}

/**
 * Refuses an offset that no store could read back (a negative or fractional offset, a blank topic, an id outside
 * int64), before any of a commit is applied: a bad value written to the file would make it unreadable later.
 *
 * @throws InvalidArgumentError naming the offending field.
 *
 * @example
 * ```ts
 * checkCommittedOffset({ topic: 't', partition: { brokerId: 0, partition: 0 }, offset: -1, msgId: 0n }); // throws
 * ```
 */
export function checkCommittedOffset(o: CommittedOffset): void {
  const p = o.partition;
  if (typeof o.topic !== 'string' || o.topic === '') throw new InvalidArgumentError('a committed offset needs a topic');
  if (!Number.isSafeInteger(p.brokerId) || p.brokerId < 0 || !Number.isSafeInteger(p.partition) || p.partition < 0) {
    throw new InvalidArgumentError(`bad partition ${JSON.stringify(p)} in a committed offset of ${o.topic}`);
  }
  if (!Number.isSafeInteger(o.offset) || o.offset < 0) {
    throw new InvalidArgumentError(`bad offset ${o.offset} committed for ${o.topic} ${partitionName(p)}`);
  }
  if (typeof o.msgId !== 'bigint' || o.msgId < -(2n ** 63n) || o.msgId >= 2n ** 63n) {
    throw new InvalidArgumentError(`msgId of ${o.topic} ${partitionName(p)} must be a bigint within int64`);
  }
}
