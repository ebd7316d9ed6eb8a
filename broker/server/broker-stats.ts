/**
 * Broker counters behind `stats` (MetaQ's StatsManager) and the HTTP API / Prometheus metrics: command counts,
 * failures, and per topic both realtime put/get counts (cleared by `stats reset`) and cumulative message and byte
 * counts in and out since start (never cleared, so that Prometheus counters only go up). Plain numbers: the put and
 * get paths add to them, readers (stats, /api/stats, /metrics) sum them when asked.
 */

/** One topic's counters. The first four are realtime (since the last `stats reset`), the rest cumulative. */
export interface TopicCounters {
  puts: number;
  putBytes: number;
  gets: number;
  getMisses: number;
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  totalGets: number;
  totalGetMisses: number;
}

/** Cumulative totals over every topic. */
export interface StatsTotals {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  gets: number;
  getMisses: number;
}

function emptyCounters(): TopicCounters {
  return { puts: 0, putBytes: 0, gets: 0, getMisses: 0, messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0,
    totalGets: 0, totalGetMisses: 0 };
}

export class BrokerStats {
  readonly startedAt: number;
  cmdPut = 0;
  cmdGet = 0;
  cmdOffset = 0;
  getMiss = 0;
  putFailed = 0;
  txBegin = 0;
  txXaBegin = 0;
  txCommit = 0;
  txRollback = 0;
  currentConnections = 0;
  private realtimeSince: number;
  private readonly topics = new Map<string, TopicCounters>();
  private lastName = '';
  private lastCounters: TopicCounters | undefined;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
    this.realtimeSince = this.startedAt;
  }

  private topic(name: string): TopicCounters {
    // Pipelined puts mostly name the topic of the previous one (the decoder hands out the same string).
    if (name === this.lastName && this.lastCounters !== undefined) return this.lastCounters;
    let c = this.topics.get(name);
    if (c === undefined) {
      c = emptyCounters();
      this.topics.set(name, c);
    }
    this.lastName = name;
    this.lastCounters = c;
    return c;
  }

  recordPut(topic: string, bytes: number): void {
    const c = this.topic(topic);
    c.puts++;
    c.putBytes += bytes;
    c.messagesIn++;
    c.bytesIn += bytes;
  }

  recordGet(topic: string, miss: boolean): void {
    const c = this.topic(topic);
    c.gets++;
    c.totalGets++;
    if (miss) {
      c.getMisses++;
      c.totalGetMisses++;
      this.getMiss++;
    }
  }

  /** A get answered with data: `bytes` sent, holding `messages` whole records. */
  recordFetch(topic: string, bytes: number, messages: number): void {
    const c = this.topic(topic);
    c.gets++;
    c.totalGets++;
    c.bytesOut += bytes;
    c.messagesOut += messages;
  }

  /** Clears the realtime counters (`stats reset`); the cumulative ones stay. */
  resetRealtime(): void {
    for (const c of this.topics.values()) {
      c.puts = 0;
      c.putBytes = 0;
      c.gets = 0;
      c.getMisses = 0;
    }
    this.realtimeSince = this.now();
  }

  /** `<key> <value>` lines of `stats realtime`: per topic counts and rates since the last reset. */
  realtimeLines(): string[] {
    const seconds = Math.max(1, (this.now() - this.realtimeSince) / 1000);
    const lines: string[] = [`realtime_since ${new Date(this.realtimeSince).toISOString()}`];
    for (const [name, c] of [...this.topics].sort(([a], [b]) => a.localeCompare(b))) {
      if (c.puts === 0 && c.gets === 0) continue;  // idle since the last reset
      lines.push(`${name} put_count ${c.puts} put_bytes ${c.putBytes} put_tps ${(c.puts / seconds).toFixed(1)} ` +
        `get_count ${c.gets} get_miss ${c.getMisses} get_tps ${(c.gets / seconds).toFixed(1)}`);
    }
    return lines;
  }

  topicRealtime(topic: string): Pick<TopicCounters, 'puts' | 'putBytes' | 'gets' | 'getMisses'> {
    const c = this.topics.get(topic);
    return { puts: c?.puts ?? 0, putBytes: c?.putBytes ?? 0, gets: c?.gets ?? 0, getMisses: c?.getMisses ?? 0 };
  }

  /** Every topic seen by a put or get since start, with its counters (live objects: read, do not keep). */
  topicCounters(): ReadonlyMap<string, Readonly<TopicCounters>> {
    return this.topics;
  }

  /** Cumulative totals over every topic. */
  totals(): StatsTotals {
    const t: StatsTotals = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, gets: 0, getMisses: 0 };
    for (const c of this.topics.values()) {
      t.messagesIn += c.messagesIn;
      t.bytesIn += c.bytesIn;
      t.messagesOut += c.messagesOut;
      t.bytesOut += c.bytesOut;
      t.gets += c.totalGets;
      t.getMisses += c.totalGetMisses;
    }
    return t;
  }

  uptimeSeconds(): number {
    return Math.floor((this.now() - this.startedAt) / 1000);
  }
}
