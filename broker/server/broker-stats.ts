/**
 * Broker counters behind `stats` (MetaQ's StatsManager): command counts, failures, and per-topic realtime
 * put/get counts and rates since the last `stats reset`.
 */

interface TopicCounters {
  puts: number;
  putBytes: number;
  gets: number;
  getMisses: number;
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
      c = { puts: 0, putBytes: 0, gets: 0, getMisses: 0 };
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
  }

  recordGet(topic: string, miss: boolean): void {
    const c = this.topic(topic);
    c.gets++;
    if (miss) {
      c.getMisses++;
      this.getMiss++;
    }
  }

  /** Clears the realtime counters (`stats reset`). */
  resetRealtime(): void {
    this.topics.clear();
    this.lastCounters = undefined;
    this.realtimeSince = this.now();
  }

  /** `<key> <value>` lines of `stats realtime`: per topic counts and rates since the last reset. */
  realtimeLines(): string[] {
    const seconds = Math.max(1, (this.now() - this.realtimeSince) / 1000);
    const lines: string[] = [`realtime_since ${new Date(this.realtimeSince).toISOString()}`];
    for (const [name, c] of [...this.topics].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`${name} put_count ${c.puts} put_bytes ${c.putBytes} put_tps ${(c.puts / seconds).toFixed(1)} ` +
        `get_count ${c.gets} get_miss ${c.getMisses} get_tps ${(c.gets / seconds).toFixed(1)}`);
    }
    return lines;
  }

  topicRealtime(topic: string): TopicCounters {
    return { ...this.topic(topic) };
  }

  uptimeSeconds(): number {
    return Math.floor((this.now() - this.startedAt) / 1000);
  }
}
