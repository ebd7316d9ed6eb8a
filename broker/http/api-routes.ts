/**
 * The read-only JSON API under /api (the contract is in the http-api notes; the dashboard reads only it):
 * broker, cluster, topics, one topic, stats, groups, config. Errors are `{ "error": "..." }` with 400/404/500.
 */
import type { FastifyInstance } from 'fastify';
import type { BrokerConfig, TopicConfig } from '../config/broker-config.js';
import type { HttpDeps } from './http-server.js';
import { HttpError } from './params.js';
import { topicTotals } from '../store/topic-totals.js';
import { activeTopics } from './topic-traffic.js';

/** A topic config as JSON (its filter map as an object). */
function topicConfigJson(tc: TopicConfig): Record<string, unknown> {
  return { ...tc, groupFilters: Object.fromEntries(tc.groupFilters) };
}

function configJson(config: BrokerConfig): Record<string, unknown> {
  return {
    file: config.sourceFile ?? null,
    system: config.system,
    zookeeper: config.zookeeper,
    topics: Object.fromEntries(config.topics.map((t) => [t.name, topicConfigJson(t)])),
    overrides: config.overrides ?? {},
  };
}

export function registerApiRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const { ctx, cluster } = deps;
  const { config, store, stats } = ctx;
  const sys = config.system;

  app.get('/api/broker', async () => ({
    brokerId: sys.brokerId,
    version: ctx.version,
    host: sys.hostName,
    port: ctx.port,
    httpPort: deps.httpPort(),
    uptimeSeconds: stats.uptimeSeconds(),
    dataPath: sys.dataPath,
    zk: { enabled: config.zookeeper.zkEnable, connect: config.zookeeper.zkConnect, root: config.zookeeper.zkRoot },
    startedAt: new Date(stats.startedAt).toISOString(),
  }));

  app.get('/api/cluster', async () => {
    if (!cluster.enabled) {
      return { zk: false, brokers: [{ brokerId: sys.brokerId, master: ctx.brokerUrl, slaves: [], self: true }] };
    }
    const brokers = await cluster.brokers();
    return {
      zk: true,
      brokers: brokers.map((b) => ({ brokerId: b.id, master: b.master, slaves: b.slaves, self: b.id === sys.brokerId })),
    };
  });

  app.get('/api/topics', async () => {
    const held = topicTotals(store);
    const names = new Set([...held.keys(), ...config.topics.map((t) => t.name).filter((n) => !n.includes('*'))]);
    const counters = stats.topicCounters();
    return {
      topics: [...names].sort().map((topic) => {
        const c = counters.get(topic);
        return {
          topic,
          partitions: store.topicConfig(topic)?.numPartitions ?? 0,
          sizeBytes: held.get(topic)?.bytes ?? 0,
          messagesIn: c?.messagesIn ?? 0,
          bytesIn: c?.bytesIn ?? 0,
          messagesOut: c?.messagesOut ?? 0,
          bytesOut: c?.bytesOut ?? 0,
        };
      }),
    };
  });

  app.get('/api/topics/:topic', async (req) => {
    const { topic } = req.params as { topic: string };
    const tc = store.topicConfig(topic);
    if (tc === undefined) throw new HttpError(404, `unknown topic ${JSON.stringify(topic)}: no [topic=...] section accepts it`);
    const partitions = [];
    let count = tc.numPartitions;
    while (store.get(topic, count) !== undefined) count++;  // partitions on disk beyond a lowered numPartitions
    for (let partition = 0; partition < count; partition++) {
      const log = store.get(topic, partition);
      partitions.push(log === undefined
        ? { partition, minOffset: 0, maxOffset: 0, sizeBytes: 0, segments: 0 }
        : { partition, minOffset: log.startOffset, maxOffset: log.readableEnd, sizeBytes: log.endOffset - log.startOffset,
          segments: log.segmentStarts().length });
    }
    return { topic, config: topicConfigJson(tc), partitions };
  });

  app.get('/api/stats', async () => {
    const topics: Record<string, { messagesIn: number; bytesIn: number; messagesOut: number; bytesOut: number }> = {};
    for (const [topic, c] of activeTopics(store, stats)) {
      topics[topic] = { messagesIn: c.messagesIn, bytesIn: c.bytesIn, messagesOut: c.messagesOut, bytesOut: c.bytesOut };
    }
    return {
      time: Date.now(),
      uptimeSeconds: stats.uptimeSeconds(),
      connections: stats.currentConnections,
      totals: stats.totals(),
      topics,
    };
  });

  app.get('/api/groups', async () => {
    if (!cluster.enabled) return { zk: false, groups: [] };
    const reports = await cluster.groups();
    return {
      zk: true,
      groups: reports.map((g) => ({
        group: g.group,
        members: g.members,
        lag: g.lag,
        topics: g.topics.map((t) => ({
          topic: t.topic,
          lag: t.lag,
          partitions: t.partitions.map((p) => ({
            brokerId: p.brokerId, partition: p.partition, owner: p.owner, committed: p.committedOffset,
            end: p.maxOffset, lag: p.lag, ...(p.error === null ? {} : { error: p.error }),
          })),
        })),
      })),
    };
  });

  app.get('/api/config', async () => configJson(config));
}
