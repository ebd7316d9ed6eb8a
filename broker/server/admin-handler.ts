import { readFile } from 'node:fs/promises';
import type { StatsRequest, VersionRequest } from '../../sdk/protocol/commands.js';
import { topicTotals } from '../store/topic-totals.js';
import type { BrokerContext } from './broker-context.js';
import type { Connection } from './connection.js';

const HELP = [
  'help                 this list',
  '(empty)              broker summary',
  'topics               per-topic partitions, message counts and bytes',
  'offsets              per-partition min and max offsets',
  'realtime             per-topic put/get counts and rates since the last reset',
  'reset                clear the realtime counters',
  'config               the server.ini the broker runs with',
  '<topic>              one topic',
];

/** `version` and `stats <item>` (MetaQ's StatsManager bodies: `STATS\r\n<key> <value>\r\n...END\r\n`). */
export function handleAdmin(conn: Connection, req: StatsRequest | VersionRequest): void {
  if (req.type === 'version') {
    conn.replyResult(200, req.opaque, conn.ctx.version);
    return;
  }
  if (req.item === 'config') {
    replyConfig(conn, req.opaque);
    return;
  }
  conn.replyResult(200, req.opaque, statsBody(conn.ctx, req.item));
}

function statsBody(ctx: BrokerContext, item: string): string {
  const lines = statsLines(ctx, item);
  return `STATS\r\n${lines.map((l) => `${l}\r\n`).join('')}END\r\n`;
}

function statsLines(ctx: BrokerContext, item: string): string[] {
  const { config, stats, store } = ctx;
  switch (item) {
    case '': {
      const totals = topicTotals(ctx.store);
      let messages = 0;
      for (const t of totals.values()) messages += t.messages;
      const mem = process.memoryUsage();
      return [
        `pid ${process.pid}`,
        `broker_id ${config.system.brokerId}`,
        `port ${ctx.port}`,
        `uptime ${stats.uptimeSeconds()}`,
        `version ${ctx.version}`,
        `slave ${ctx.replication !== null}`,
        `curr_connections ${stats.currentConnections}`,
        `threads 1`,
        `cmd_put ${stats.cmdPut}`,
        `cmd_get ${stats.cmdGet}`,
        `cmd_offset ${stats.cmdOffset}`,
        `tx_begin ${stats.txBegin}`,
        `tx_xa_begin ${stats.txXaBegin}`,
        `tx_commit ${stats.txCommit}`,
        `tx_rollback ${stats.txRollback}`,
        `get_miss ${stats.getMiss}`,
        `put_failed ${stats.putFailed}`,
        `total_messages ${messages}`,
        `topics ${totals.size}`,
        `config_checksum ${ctx.configChecksum}`,
        `rss_bytes ${mem.rss}`,
        `long_polls ${ctx.longPoll.size}`,
      ];
    }
    case 'topics': {
      const totals = topicTotals(ctx.store);
      const lines: string[] = [];
      const names = new Set([...totals.keys(), ...config.topics.map((t) => t.name).filter((n) => !n.includes('*'))]);
      for (const name of [...names].sort()) {
        const t = totals.get(name);
        const cfg = store.topicConfig(name);
        if (t === undefined) lines.push(`${name} *Empty*`);
        else {
          lines.push(`${name} partitions ${t.partitions} message_count ${t.messages} message_bytes ${t.bytes} ` +
            `accept_publish ${cfg?.acceptPublish ?? true} accept_subscribe ${cfg?.acceptSubscribe ?? true}`);
        }
      }
      return lines;
    }
    case 'offsets':
      return [...store.partitions()]
        .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
        .map((l) => `${l.topic} part ${l.partition} min_offset ${l.startOffset} max_offset ${l.readableEnd}`);
    case 'realtime':
      return stats.realtimeLines();
    case 'reset':
      stats.resetRealtime();
      return ['reset ok'];
    case 'help':
      return HELP;
    default:
      return topicLines(ctx, item);
  }
}

/** Any other item is a topic name: resultCode 0 = has data, 1 = unknown, 2 = configured but no data. */
function topicLines(ctx: BrokerContext, topic: string): string[] {
  const cfg = ctx.store.topicConfig(topic);
  const t = topicTotals(ctx.store).get(topic);
  const rt = ctx.stats.topicRealtime(topic);
  const code = t !== undefined ? 0 : cfg === undefined ? 1 : 2;
  return [
    `resultCode ${code}`,
    `partitions ${Math.max(t?.partitions ?? 0, cfg?.numPartitions ?? 0)}`,
    `message_count ${t?.messages ?? 0}`,
    `bytes ${t?.bytes ?? 0}`,
    `topic_realtime_put ${rt.puts}`,
    `topic_realtime_put_bytes ${rt.putBytes}`,
    `topic_realtime_get ${rt.gets}`,
    `topic_realtime_get_miss ${rt.getMisses}`,
  ];
}

/** `stats config`: `result 200 <size> <opaque>\r\n` followed by the raw server.ini (empty when running on defaults). */
function replyConfig(conn: Connection, opaque: number): void {
  const file = conn.ctx.config.sourceFile;
  if (file === undefined) {
    conn.replyResult(200, opaque, '');
    return;
  }
  readFile(file).then(
    (text) => conn.replyRaw(Buffer.concat([Buffer.from(`result 200 ${text.length} ${opaque}\r\n`), text])),
    (err: unknown) => conn.replyResult(500, opaque, `cannot read ${file}: ${(err as Error).message}`),
  );
}
