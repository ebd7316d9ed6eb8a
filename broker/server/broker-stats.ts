/**
 * Broker counters behind `stats` (MetaQ's StatsManager) and the HTTP API / Prometheus metrics: command counts,
 * failures, and per topic cumulative message, byte and get counts since start, from which the realtime counts of
 * `stats realtime` (since the last `stats reset`) are derived. Plain numbers: the put and get paths add to them,
 * readers (stats, /api/stats, /metrics) sum them when asked.
 */

/** One topic's counters since start (never cleared, so that Prometheus counters only go up). */
export interface TopicCounters {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  /** Gets answered, with or without data. */
  gets: number;
  getMisses: number;
}

/** One topic's counts since the last `stats reset` (MetaQ's realtime stats). */
export interface RealtimeCounters {
  puts: number;
  putBytes: number;
  gets: number;
  getMisses: number;
}

/**
 * The counters kept per topic: only the cumulative ones are counted (the put and get paths add to nothing else);
 * the realtime ones are derived as the cumulative count minus its value at the last reset.
 */
interface TopicEntry extends TopicCounters {
  readonly atReset: RealtimeCounters;
}

function emptyEntry(): TopicEntry {
  return { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, gets: 0, getMisses: 0,
    atReset: { puts: 0, putBytes: 0, gets: 0, getMisses: 0 } };
}

function realtime(c: TopicEntry): RealtimeCounters {
  const r = c.atReset;
  return { puts: c.messagesIn - r.puts, putBytes: c.bytesIn - r.putBytes, gets: c.gets - r.gets,
    getMisses: c.getMisses - r.getMisses };
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
  private readonly topics = new Map<string, TopicEntry>();
  private lastName = '';
  private lastCounters: TopicEntry | undefined;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
    this.realtimeSince = this.startedAt;
  }

  private topic(name: string): TopicEntry {
    // Pipelined puts mostly name the topic of the previous one (the decoder hands out the same string).
    if (name === this.lastName && this.lastCounters !== undefined) return this.lastCounters;
    let c = this.topics.get(name);
    if (c === undefined) {
      c = emptyEntry();
      this.topics.set(name, c);
    }
    this.lastName = name;
    this.lastCounters = c;
    return c;
  }

  recordPut(topic: string, bytes: number): void {
    const c = this.topic(topic);
    c.messagesIn++;
    c.bytesIn += bytes;
  }

  recordGet(topic: string, miss: boolean): void {
    const c = this.topic(topic);
    c.gets++;
    if (miss) {
      c.getMisses++;
      this.getMiss++;
    }
  }

  /** A get answered with data: `bytes` sent, holding `messages` whole records. */
  recordFetch(topic: string, bytes: number, messages: number): void {
    const c = this.topic(topic);
    c.gets++;
    c.bytesOut += bytes;
    c.messagesOut += messages;
  }

  /** Starts the realtime counts afresh (`stats reset`); the cumulative ones go on. */
  resetRealtime(): void {
    for (const c of this.topics.values()) {
      const r = c.atReset;
      r.puts = c.messagesIn;
      r.putBytes = c.bytesIn;
      r.gets = c.gets;
      r.getMisses = c.getMisses;
    }
    this.realtimeSince = this.now();
  }

  /** `<key> <value>` lines of `stats realtime`: per topic counts and rates since the last reset. */
  realtimeLines(): string[] {
    const seconds = Math.max(1, (this.now() - this.realtimeSince) / 1000);
    const lines: string[] = [`realtime_since ${new Date(this.realtimeSince).toISOString()}`];
    for (const [name, entry] of [...this.topics].sort(([a], [b]) => a.localeCompare(b))) {
      const c = realtime(entry);
      if (c.puts === 0 && c.gets === 0) continue;  // idle since the last reset
      lines.push(`${name} put_count ${c.puts} put_bytes ${c.putBytes} put_tps ${(c.puts / seconds).toFixed(1)} ` +
        `get_count ${c.gets} get_miss ${c.getMisses} get_tps ${(c.gets / seconds).toFixed(1)}`);
    }
    return lines;
  }

  topicRealtime(topic: string): RealtimeCounters {
    const c = this.topics.get(topic);
    return c === undefined ? { puts: 0, putBytes: 0, gets: 0, getMisses: 0 } : realtime(c);
  }

  /** Every topic seen by a put or get since start, with its counters (live objects: read, do not keep). */
  topicCounters(): ReadonlyMap<string, Readonly<TopicCounters>> {
    return this.topics;
  }

  /** Cumulative totals over every topic. */
  totals(): TopicCounters {
    const t: TopicCounters = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, gets: 0, getMisses: 0 };
    for (const c of this.topics.values()) {
      t.messagesIn += c.messagesIn;
      t.bytesIn += c.bytesIn;
      t.messagesOut += c.messagesOut;
      t.bytesOut += c.bytesOut;
      t.gets += c.gets;
      t.getMisses += c.getMisses;
    }
    return t;
  }

  uptimeSeconds(): number {
    return Math.floor((this.now() - this.startedAt) / 1000);
  }
}
