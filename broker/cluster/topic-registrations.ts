import type { BrokerConfig } from '../config/broker-config.js';
import { findTopicConfig } from '../config/topic-match.js';
import type { MessageStore } from '../store/message-store.js';

/** What the broker registers for one topic. */
export interface TopicRegistration {
  readonly topic: string;
  /** Partitions served: the configured count, or more when data on disk has higher partitions. */
  readonly numParts: number;
  /** acceptPublish: a `topics-pub` node. */
  readonly publish: boolean;
  /** acceptSubscribe: a `topics-sub` node. */
  readonly subscribe: boolean;
}

/**
 * The registrations of `topics` under `config`: a topic no section accepts is registered only when it has data
 * on disk (the store still serves it), with the `[system]` defaults.
 */
export function topicRegistrations(config: BrokerConfig, store: MessageStore, topics: Iterable<string>): TopicRegistration[] {
  const wanted = new Set(topics);
  // One pass over the store's partitions, not one per topic: a broker may hold thousands.
  const highest = new Map<string, number>();
  for (const log of store.partitions()) {
    if (wanted.has(log.topic)) highest.set(log.topic, Math.max(highest.get(log.topic) ?? -1, log.partition));
  }
  const out: TopicRegistration[] = [];
  for (const topic of wanted) {
    const tc = findTopicConfig(config, topic);
    const onDisk = highest.get(topic);
    if (tc === undefined && onDisk === undefined) continue;
    const sys = config.system;
    out.push({
      topic,
      numParts: Math.max(tc?.numPartitions ?? sys.numPartitions, (onDisk ?? -1) + 1),
      publish: tc?.acceptPublish ?? sys.acceptPublish,
      subscribe: tc?.acceptSubscribe ?? sys.acceptSubscribe,
    });
  }
  return out;
}
