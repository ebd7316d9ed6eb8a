/**
 * The broker's server-side consumer filters (MetaQ's ConsumerFilterManager): for each `[topic=...]` section, the
 * `group.<name>=<module>` lines, loaded when the broker starts (a bad one stops the start) and again by
 * {@link ConsumerFilters.reload}.
 *
 * A filter that throws, or returns a Promise (filters are synchronous), rejects the message, as in MetaQ; the
 * failure is logged at most once per {@link ERROR_LOG_INTERVAL_MS} per filter, with the count of those not logged.
 */
import type { Logger } from 'pino';
import type { BrokerConfig, TopicConfig } from '../config/broker-config.js';
import { findTopicConfig } from '../config/topic-match.js';
import type { AcceptFunction, FilterMessage } from './filter-message.js';
import { describeOrigin, loadFilterModule, resolveFilterPath, type FilterOrigin } from './filter-module.js';
import type { MessageTest } from './filter-window.js';

export const ERROR_LOG_INTERVAL_MS = 10_000;
const TOPIC_CACHE_LIMIT = 10_000;

/** One group's filter in one topic section. */
export class GroupFilter implements MessageTest {
  /** Messages rejected because the filter threw (or returned a Promise). */
  failures = 0;
  private lastLogAt = -Infinity;
  private unlogged = 0;

  constructor(
    private readonly accept: AcceptFunction,
    readonly origin: FilterOrigin,
    /** The resolved module path. */
    readonly path: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  test(message: FilterMessage): boolean {
    let verdict: unknown;
    try {
      verdict = this.accept(this.origin.group, message);
    } catch (err) {
      this.failed(err, message);
      return false;
    }
    if (typeof verdict === 'object' && verdict !== null && typeof (verdict as { then?: unknown }).then === 'function') {
      this.failed(new Error('accept returned a Promise: filters must answer synchronously'), message);
      return false;
    }
    return Boolean(verdict);
  }

  private failed(err: unknown, message: FilterMessage): void {
    this.failures++;
    const t = this.now();
    if (t - this.lastLogAt < ERROR_LOG_INTERVAL_MS) {
      this.unlogged++;
      return;
    }
    this.logger.warn({ err, topic: message.topic, partition: message.partition, offset: message.offset,
      alsoFailedSinceLastLog: this.unlogged }, `${describeOrigin(this.origin, this.path)} threw: message rejected`);
    this.lastLogAt = t;
    this.unlogged = 0;
  }
}

export class ConsumerFilters {
  private config: BrokerConfig;
  private bySection: ReadonlyMap<TopicConfig, ReadonlyMap<string, GroupFilter>>;
  /** topic → its section's filters by group (null: none); cleared by a reload. */
  private readonly byTopic = new Map<string, ReadonlyMap<string, GroupFilter> | null>();

  private constructor(config: BrokerConfig, bySection: ReadonlyMap<TopicConfig, ReadonlyMap<string, GroupFilter>>,
    private readonly logger: Logger) {
    this.config = config;
    this.bySection = bySection;
  }

  /** Loads every filter `config` names; throws ConfigError (naming section, group, path) if one cannot be loaded. */
  static async load(config: BrokerConfig, logger: Logger): Promise<ConsumerFilters> {
    return new ConsumerFilters(config, await loadAll(config, logger), logger);
  }

  /**
   * Switches to the filters of a reloaded config. All are loaded before any is used, so a bad one leaves the
   * current filters in place (and throws ConfigError).
   */
  async reload(config: BrokerConfig): Promise<void> {
    const next = await loadAll(config, this.logger);
    this.config = config;
    this.bySection = next;
    this.byTopic.clear();
  }

  /** Number of configured filters. */
  get size(): number {
    let n = 0;
    for (const groups of this.bySection.values()) n += groups.size;
    return n;
  }

  /** The filter of `group` on `topic`, if its topic section names one. Cheap when no filter is configured. */
  find(topic: string, group: string): GroupFilter | undefined {
    if (this.bySection.size === 0) return undefined;
    let groups = this.byTopic.get(topic);
    if (groups === undefined) {
      const tc = findTopicConfig(this.config, topic);
      groups = (tc === undefined ? undefined : this.bySection.get(tc)) ?? null;
      if (this.byTopic.size >= TOPIC_CACHE_LIMIT) this.byTopic.clear();
      this.byTopic.set(topic, groups);
    }
    return groups === null ? undefined : groups.get(group);
  }
}

async function loadAll(config: BrokerConfig, logger: Logger): Promise<Map<TopicConfig, Map<string, GroupFilter>>> {
  const modules = new Map<string, Promise<AcceptFunction>>();
  const out = new Map<TopicConfig, Map<string, GroupFilter>>();
  for (const tc of config.topics) {
    if (tc.groupFilters.size === 0) continue;
    const groups = new Map<string, GroupFilter>();
    for (const [group, module] of tc.groupFilters) {
      const origin: FilterOrigin = { section: tc.name, group, module };
      const path = resolveFilterPath(module, config.system.appClassPath);
      let accept = modules.get(path);
      if (accept === undefined) {
        accept = loadFilterModule(path, origin);
        modules.set(path, accept);
      }
      groups.set(group, new GroupFilter(await accept, origin, path, logger));
    }
    out.set(tc, groups);
  }
  if (out.size > 0) {
    logger.info({ filters: [...out].flatMap(([tc, groups]) => [...groups.values()].map((f) =>
      `${tc.name}/${f.origin.group}=${f.path}`)) }, 'server-side consumer filters loaded');
  }
  return out;
}
