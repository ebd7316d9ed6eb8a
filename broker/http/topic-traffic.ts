/**
 * The topics the JSON API and /metrics list, so that both list the same: those with traffic or a log (sizes come
 * from broker/store/topic-totals.ts).
 */
import type { BrokerStats, TopicCounters } from '../server/broker-stats.js';
import type { MessageStore } from '../store/message-store.js';
import { topicTotals } from '../store/topic-totals.js';

/** The counters of the topics with traffic or a log: a get naming an unknown topic counts a miss but adds no row. */
export function activeTopics(store: MessageStore, stats: BrokerStats): [string, Readonly<TopicCounters>][] {
  const held = topicTotals(store);
  return [...stats.topicCounters()].filter(([t, c]) => held.has(t) || c.messagesIn > 0 || c.messagesOut > 0);
}
