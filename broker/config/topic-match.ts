/**
 * Which `[topic=<name>]` section governs a topic: an exact name wins, then the first wildcard section in
 * file order whose pattern matches (`*` matches any run of characters, including none).
 */
import type { BrokerConfig, TopicConfig } from './broker-config.js';

const patterns = new WeakMap<TopicConfig, RegExp>();

/** The section for `topic`, or undefined when the broker does not accept it. */
export function findTopicConfig(config: BrokerConfig, topic: string): TopicConfig | undefined {
  for (const t of config.topics) if (t.name === topic) return t;
  for (const t of config.topics) {
    if (!t.name.includes('*')) continue;
    let re = patterns.get(t);
    if (re === undefined) {
      re = new RegExp('^' + t.name.split('*').map(escapeRegExp).join('.*') + '$');
      patterns.set(t, re);
    }
    if (re.test(topic)) return t;
  }
  return undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
