/**
 * Per-topic totals over the partitions a store holds: what `stats` (topics, summary, a topic), the JSON API and
 * /metrics report, computed in one place so that they agree.
 */
import type { MessageStore } from './message-store.js';

/** One topic's totals over its partition logs. */
export interface TopicTotals {
  partitions: number;
  messages: number;
  /** Bytes held (end minus start offset, summed). */
  bytes: number;
}

/** Every topic with a partition log, and its totals. */
export function topicTotals(store: MessageStore): Map<string, TopicTotals> {
  const totals = new Map<string, TopicTotals>();
  for (const log of store.partitions()) {
    let t = totals.get(log.topic);
    if (t === undefined) {
      t = { partitions: 0, messages: 0, bytes: 0 };
      totals.set(log.topic, t);
    }
    t.partitions++;
    t.messages += log.messageCount;
    t.bytes += log.endOffset - log.startOffset;
  }
  return totals;
}
