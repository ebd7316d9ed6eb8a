/**
 * The broker's Prometheus metrics (`GET /metrics`), all named `metaq_*`, plus prom-client's default process
 * metrics. Nothing here runs per message: the put and get paths only add to plain numbers (BrokerStats, LongPoll),
 * which the gauges and counters below read when scraped. The fsync histogram is observed once per fdatasync,
 * which group commit shares among many puts. Consumer lag is read from ZooKeeper at scrape time through the
 * cached {@link ClusterView}.
 */
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BrokerContext } from '../server/broker-context.js';
import type { ClusterView } from './cluster-view.js';
import { topicTotals } from '../store/topic-totals.js';
import { activeTopics } from './topic-traffic.js';

/** Longest a scrape waits for the consumer-lag view before leaving those series out. */
const LAG_DEADLINE_MS = 5000;

/** Upper bounds of the fsync latency buckets, seconds: from a fast NVMe fdatasync to a stalled disk. */
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export interface BrokerMetricsOptions {
  readonly ctx: BrokerContext;
  readonly cluster: ClusterView;
  readonly logger: Logger;
}

export interface BrokerMetrics {
  readonly registry: Registry;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<string>;
  /** Stops observing the store. */
  close(): void;
}

type TopicField = 'messagesIn' | 'bytesIn' | 'messagesOut' | 'bytesOut';

/** Creates the registry and hooks the fsync observer into the store. */
export function createBrokerMetrics(options: BrokerMetricsOptions): BrokerMetrics {
  const { ctx, cluster, logger } = options;
  const { stats, store, longPoll } = ctx;
  const brokerId = ctx.config.system.brokerId;
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const topicCounter = (name: string, help: string, field: TopicField): void => {
    new Counter({
      name, help, labelNames: ['topic'], registers,
      collect(this: Counter<'topic'>) {
        this.reset();
        for (const [topic, c] of activeTopics(store, stats)) this.inc({ topic }, c[field]);
      },
    });
  };
  topicCounter('metaq_messages_in_total', 'Messages stored by puts (TCP and HTTP), per topic.', 'messagesIn');
  topicCounter('metaq_bytes_in_total', 'Message DATA bytes stored by puts, per topic.', 'bytesIn');
  topicCounter('metaq_messages_out_total', 'Whole messages sent by gets, per topic.', 'messagesOut');
  topicCounter('metaq_bytes_out_total', 'Bytes sent by gets (message-set windows), per topic.', 'bytesOut');

  const simpleCounter = (name: string, help: string, read: () => number): void => {
    new Counter({ name, help, registers, collect(this: Counter) { this.reset(); this.inc(read()); } });
  };
  const simpleGauge = (name: string, help: string, read: () => number): void => {
    new Gauge({ name, help, registers, collect(this: Gauge) { this.set(read()); } });
  };
  simpleCounter('metaq_put_failures_total', 'Puts answered with an error.', () => stats.putFailed);
  simpleCounter('metaq_get_misses_total', 'Gets answered without data (404).', () => stats.getMiss);
  simpleGauge('metaq_connections', 'Open client connections of the MetaQ protocol (TCP).', () => stats.currentConnections);
  simpleGauge('metaq_long_poll_waiting', 'Gets parked at the end of their partition, waiting for data.', () => longPoll.size);
  simpleCounter('metaq_long_poll_waits_total', 'Gets that were parked in a long poll.', () => longPoll.waitsTotal);
  simpleGauge('metaq_uptime_seconds', 'Seconds since the broker started.', () => stats.uptimeSeconds());
  simpleGauge('metaq_replication_lag_bytes', 'Async slave: bytes its master holds that it has not stored yet (0 on a master).',
    () => ctx.replication?.lagBytes() ?? 0);

  new Gauge({
    name: 'metaq_topic_size_bytes', help: 'Bytes held in the logs of a topic (all partitions).', labelNames: ['topic'], registers,
    collect(this: Gauge<'topic'>) {
      this.reset();
      for (const [topic, t] of topicTotals(store)) this.set({ topic }, t.bytes);
    },
  });

  const recovery = store.recoveryReport;
  const fixed = (name: string, help: string, value: number): void => {
    new Gauge({ name, help, registers }).set(value);
  };
  fixed('metaq_recovery_partitions', 'Partitions opened at start.', recovery.partitions);
  fixed('metaq_recovery_clean_partitions', 'Partitions opened on a clean-shutdown marker (not scanned).',
    recovery.cleanPartitions);
  fixed('metaq_recovery_scanned_bytes', 'Bytes checked record by record by the start-up recovery.', recovery.scannedBytes);
  fixed('metaq_recovery_scanned_messages', 'Records checked by the start-up recovery.', recovery.scannedRecords);
  fixed('metaq_recovery_cuts', 'Ranges cut from logs by the start-up recovery.', recovery.cuts.length);
  fixed('metaq_recovery_truncated_bytes', 'Bytes cut from logs by the start-up recovery.',
    recovery.cuts.reduce((n, c) => n + c.bytes, 0));
  fixed('metaq_recovery_duration_seconds', 'How long the start-up recovery took.', recovery.durationMs / 1000);

  const fsync = new Histogram({
    name: 'metaq_fsync_duration_seconds', help: 'Duration of each segment fdatasync.', buckets: FSYNC_BUCKETS, registers,
  });
  store.observeFsync((seconds) => fsync.observe(seconds));

  const lagErrors = new Counter({
    name: 'metaq_consumer_lag_errors_total', help: 'Scrapes that could not read consumer lag from ZooKeeper.', registers,
  });
  new Gauge({
    name: 'metaq_consumer_lag_bytes',
    // Each broker reports its own partitions, so that scraping every broker gives each series once.
    help: 'Bytes between a consumer group\'s committed offset and the end of this broker\'s partition (ZooKeeper mode only).',
    labelNames: ['group', 'topic', 'partition'], registers,
    async collect(this: Gauge<'group' | 'topic' | 'partition'>) {
      this.reset();
      if (!cluster.enabled) return;
      try {
        for (const g of await withDeadline(cluster.groups(), LAG_DEADLINE_MS)) {
          for (const t of g.topics) {
            for (const p of t.partitions) {
              if (p.lag !== null && p.brokerId === brokerId) this.set({ group: g.group, topic: t.topic, partition: p.name }, p.lag);
            }
          }
        }
      } catch (err) {
        lagErrors.inc();
        logger.warn({ err }, 'consumer lag left out of /metrics');
      }
    },
  });

  return {
    registry,
    render: () => registry.metrics(),
    close: () => {
      store.observeFsync(undefined);
      registry.clear();
    },
  };
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
