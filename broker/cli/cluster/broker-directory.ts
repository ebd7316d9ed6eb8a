/**
 * What the cluster commands ask the brokers, by the `meta://` URL registered in ZooKeeper: liveness (`version`),
 * per-partition offset ranges (`stats offsets`), per-topic totals (`stats topics`), a partition's nearest offset
 * (`offset`) and the record at an offset (`get`). One connection per broker; `stats` answers are cached for the
 * command's run, so a view over many groups and partitions costs one request per broker.
 */
import { BrokerError } from '../../../sdk/errors.js';
import { MAX_OFFSET, type Response } from '../../../sdk/protocol/commands.js';
import { encodeGet, encodeOffset, encodeStats, encodeVersion } from '../../../sdk/protocol/encode.js';
import { RECORD_HEADER_SIZE, checkRecord, describeRecordCheck, RecordCheck, type RecordCheckFailure } from '../../../sdk/protocol/record.js';
import { parseBrokerUrl } from '../../../sdk/protocol/broker-url.js';
import { BrokerClient } from '../broker-client.js';

/** A partition's readable byte range: `[min, max)`; max is where the next record will be written. */
export interface PartitionRange {
  readonly min: number;
  readonly max: number;
}

/** One line of `stats topics`. */
export interface BrokerTopicTotals {
  readonly partitions: number;
  readonly messages: number;
  readonly bytes: number;
}

/** The group name MetaQ's topic browser uses: the broker answers its gets without a long poll. */
const BROWSER_GROUP = 'Just_for_Browser';
/** Largest record DATA the boundary check reads whole; a larger record is checked by its framing only. */
const MAX_CHECKED_RECORD = 16 * 1024 * 1024;

/** The key of a partition in the maps below. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic} ${partition}`;
}

export class BrokerDirectory {
  private readonly clients = new Map<string, BrokerClient>();
  private readonly offsetStats = new Map<string, Promise<Map<string, PartitionRange>>>();
  private readonly topicStats = new Map<string, Promise<Map<string, BrokerTopicTotals>>>();

  constructor(private readonly timeoutMs: number) {}

  /** The broker's version string; rejects when it does not answer. */
  async version(url: string): Promise<string> {
    const res = await this.ask(url, (opaque) => encodeVersion(opaque));
    return ok(res).trim();
  }

  /** `stats offsets`: every partition with data on that broker, keyed by {@link partitionKey}. */
  offsets(url: string): Promise<Map<string, PartitionRange>> {
    return cached(this.offsetStats, url, async () => {
      const map = new Map<string, PartitionRange>();
      for (const line of await this.stats(url, 'offsets')) {
        const m = /^(\S+) part (\d+) min_offset (\d+) max_offset (\d+)$/.exec(line);
        if (m !== null) map.set(partitionKey(m[1]!, Number(m[2])), { min: Number(m[3]), max: Number(m[4]) });
      }
      return map;
    });
  }

  /** `stats topics`: the topics with data on that broker (an `*Empty*` topic is absent). */
  topics(url: string): Promise<Map<string, BrokerTopicTotals>> {
    return cached(this.topicStats, url, async () => {
      const map = new Map<string, BrokerTopicTotals>();
      for (const line of await this.stats(url, 'topics')) {
        const m = /^(\S+) partitions (\d+) message_count (\d+) message_bytes (\d+)/.exec(line);
        if (m !== null) map.set(m[1]!, { partitions: Number(m[2]), messages: Number(m[3]), bytes: Number(m[4]) });
      }
      return map;
    });
  }

  /**
   * The partition's range asked with `offset` requests (exact even for a partition that has no data yet, which
   * `stats offsets` leaves out): min = the nearest offset to 0, max = the nearest offset to the largest one.
   */
  async range(url: string, topic: string, partition: number): Promise<PartitionRange> {
    const [min, max] = await Promise.all([
      this.nearestOffset(url, topic, partition, 0),
      this.nearestOffset(url, topic, partition, MAX_OFFSET),
    ]);
    return { min, max };
  }

  /** The `offset` request: the nearest valid offset (the start of the segment holding it, or an end of the log). */
  async nearestOffset(url: string, topic: string, partition: number, offset: number): Promise<number> {
    const res = await this.ask(url, (opaque) => encodeOffset({ topic, group: BROWSER_GROUP, partition, offset, opaque }));
    const body = ok(res).trim();
    if (!/^\d+$/.test(body)) throw new BrokerError(200, `unexpected offset answer ${JSON.stringify(body)}`);
    return Number(body);
  }

  /**
   * Why `offset` (inside the partition's range `[range.min, range.max)`) is not the start of a whole record, or
   * undefined when it is: a consumer placed in the middle of a record would read garbage.
   */
  async recordProblemAt(url: string, topic: string, partition: number, offset: number, range: PartitionRange,
    maxTransfer: number): Promise<string | undefined> {
    let size = Math.min(maxTransfer, 64 * 1024);
    for (;;) {
      const res = await this.ask(url, (opaque) => encodeGet({ topic, group: BROWSER_GROUP, partition, offset, maxSize: size, opaque }));
      if (res.type === 'result') {
        return res.code === 301 ? `the broker moved it to ${res.body.toString().trim()}` : `the broker answered ${res.code}: ${res.body.toString().trim()}`;
      }
      const check = checkRecord(res.body, 0, res.body.length, MAX_CHECKED_RECORD);
      if (check > 0) return undefined;
      if (check !== RecordCheck.INCOMPLETE_DATA) return `no record starts there (${describeRecordCheck(check as RecordCheckFailure)})`;
      const whole = RECORD_HEADER_SIZE + res.body.readInt32BE(0);
      if (offset + whole > range.max) return `a record there would end at ${offset + whole}, past the end of the log (${range.max})`;
      // Fetch the whole record once; one larger than a get carries (the broker caps it at its maxTransferSize)
      // is judged by its framing alone.
      if (whole <= size || whole > maxTransfer) return undefined;
      size = whole;
    }
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private async stats(url: string, item: string): Promise<string[]> {
    const res = await this.ask(url, (opaque) => encodeStats({ item, opaque }));
    return ok(res).split(/\r?\n/).filter((l) => l !== '' && l !== 'STATS' && l !== 'END');
  }

  /** Rejects with InvalidArgumentError (from parseBrokerUrl) for a registered URL that is not `meta://host:port`. */
  private async ask(url: string, build: (opaque: number) => Buffer): Promise<Response> {
    let client = this.clients.get(url);
    if (client === undefined) {
      client = new BrokerClient(parseBrokerUrl(url), this.timeoutMs);
      this.clients.set(url, client);
    }
    return client.request(build);
  }
}

function ok(res: Response): string {
  const body = res.body.toString('utf8');
  if (res.type !== 'result' || res.code !== 200) throw new BrokerError(res.type === 'result' ? res.code : 0, body.slice(0, 200));
  return body;
}

function cached<T>(cache: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (p === undefined) {
    p = load();
    cache.set(key, p);
  }
  return p;
}
