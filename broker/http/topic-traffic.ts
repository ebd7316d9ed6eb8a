/**
 * Per-topic figures shared by the JSON API and /metrics, so that both list the same topics: the bytes each topic
 * holds, and the traffic counters of the topics that have traffic or a log.
 */
import type { BrokerStats, TopicCounters } from '../server/broker-stats.js';
import type { MessageStore } from '../store/message-store.js';

/** Bytes held per topic over its partitions' logs; every topic with a log object has an entry (maybe 0). */
export function topicSizes(store: MessageStore): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const log of store.partitions()) sizes.set(log.topic, (sizes.get(log.topic) ?? 0) + log.endOffset - log.startOffset);
  return sizes;
}

/** The counters of the topics with traffic or a log: a get naming an unknown topic counts a miss but adds no row. */
export function activeTopics(store: MessageStore, stats: BrokerStats): [string, Readonly<TopicCounters>][] {
  const sizes = topicSizes(store);
  return [...stats.topicCounters()].filter(([t, c]) => sizes.has(t) || c.messagesIn > 0 || c.messagesOut > 0);
}
