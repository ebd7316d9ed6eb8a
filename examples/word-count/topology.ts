/**
 * Word count, at least once with exact counts: spout -> split -> count -> idempotent sink.
 *
 * The spout's Node face (`stream()`) reads a topic of sentences through a consumer group; the split stage turns each
 * sentence tuple into its words, the count stage tallies them, and the sink applies each message's tally to the
 * counts in the state directory once (keyed by partition and offset), fdatasyncs, and only then acks the tuples. The
 * spout commits offsets only up to acked tuples, so a crash replays messages (never skips them) and the sink skips
 * the ones it already applied: the counts come out exact however often the process dies.
 *
 *   npx tsx examples/word-count/topology.ts --server meta://127.0.0.1:8123 --topic sentences --group word-count \
 *     --state ./word-count-state [--until-idle 2000] [--max-pending 1000] [--progress] [--json] [--top 10] \
 *     [--crash-after <n>]
 *
 * `--server` defaults to $METAQ_URL or meta://127.0.0.1:8123; `--zk <connect>` (or $METAQ_ZK) uses a cluster
 * instead. The state directory also holds the group's offsets (`offsets.json`) and recover store (`recover/`), so
 * removing it starts over from nothing. SIGINT / SIGTERM (or `--until-idle <ms>` without messages) stop it cleanly:
 * what reached the sink is made durable and acked, acked offsets are committed, and the counts are printed.
 * `--crash-after <n>` is the crash demo: the process SIGKILLs itself once n messages are counted, between making a
 * batch durable and acking it (the worst moment: the whole batch comes back and must not be counted again).
 */
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { MetaqSpout } from '../../spout/index.js';
import { CountStage } from './count.js';
import { WordCountStore } from './count-store.js';
import { CountSink, type SinkStats } from './sink.js';
import { SplitStage } from './split.js';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    zk: { type: 'string' },
    topic: { type: 'string', default: 'sentences' },
    group: { type: 'string', default: 'word-count' },
    state: { type: 'string', default: 'word-count-state' },
    'max-pending': { type: 'string', default: '1000' },
    'until-idle': { type: 'string' },
    'crash-after': { type: 'string' },
    progress: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    top: { type: 'string', default: '10' },
  },
});

const state = args.state;
const zk = args.zk ?? process.env.METAQ_ZK;
const store = await WordCountStore.open(state);
if (store.loaded.cutBytes > 0) {
  console.error(`word-count: cut a torn tail of ${store.loaded.cutBytes} bytes from ${join(state, 'counts.log')}`);
}
if (args.progress) console.log(`started messages=${store.size} cut=${store.loaded.cutBytes}`);

const spout = new MetaqSpout({
  client: {
    ...(zk === undefined ? { serverUrl: args.server ?? process.env.METAQ_URL ?? 'meta://127.0.0.1:8123' } : { zkConnect: zk }),
    offsetsFile: join(state, 'offsets.json'),
    recoverDir: join(state, 'recover'),
  },
  topic: args.topic,
  group: args.group,
  maxPending: Number(args['max-pending']),
});

/** When the sink last made a batch durable (or the start): `--until-idle` counts from here. */
let lastActivity = Date.now();
const source = spout.stream();
const split = new SplitStage();
const crashAfter = args['crash-after'] === undefined ? Infinity : Number(args['crash-after']);
const sink = new CountSink(store, {
  // The crash demo's failpoint: counts durable, tuples not acked. The restart must skip this whole batch.
  durable: () => {
    if (store.size < crashAfter) return;
    console.error(`word-count: crashing on purpose (SIGKILL): ${store.size} messages counted, the last batch not acked`);
    process.kill(process.pid, 'SIGKILL');
  },
  acked: (s: SinkStats) => {
    lastActivity = Date.now();
    if (!args.progress) return;
    const { pending, beyondCommit } = spout.stats();
    console.log(`progress messages=${store.size} applied=${s.applied} duplicates=${s.duplicates} batches=${s.batches} ` +
      `pending=${pending} beyondCommit=${beyondCommit}`);
  },
}, Math.min(256, spout.maxPending));
const flowing = pipeline(split, new CountStage(), sink);
source.pipe(split);

const idleMs = args['until-idle'] === undefined ? undefined : Number(args['until-idle']);
const idleTimer = setInterval(() => {
  if (idleMs === undefined || Date.now() - lastActivity < idleMs) return;
  const s = spout.stats();
  if (s.pending === 0 && s.ready === 0) void stop('idle');
}, 100);

let stopping: Promise<void> | undefined;
function stop(reason: string, error?: unknown): Promise<void> {
  if (error !== undefined) {
    console.error(`word-count: ${reason}:`, error);
    process.exitCode = 1;
  }
  stopping ??= (async () => {
    clearInterval(idleTimer);
    // No new tuples; the ones already past the spout are counted, made durable and acked, then the acks committed.
    source.unpipe(split);
    split.end();
    await flowing.catch(() => undefined);
    await spout.close();
    source.destroy();
    await store.close();
    printSummary(reason);
  })();
  return stopping;
}

flowing.catch((e: unknown) => stop('the sink failed', e));
source.on('error', (e: unknown) => void stop('the spout failed', e));
process.once('SIGINT', () => void stop('SIGINT'));
process.once('SIGTERM', () => void stop('SIGTERM'));

function printSummary(reason: string): void {
  const counts = [...store.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const words = counts.reduce((sum, [, n]) => sum + n, 0);
  const { applied, duplicates } = sink.stats;
  if (args.json) {
    console.log(JSON.stringify({ reason, messages: store.size, applied, duplicates, words, counts: Object.fromEntries(counts) }));
    return;
  }
  console.log(`word-count stopped (${reason}): ${store.size} messages counted (${applied} this run, ` +
    `${duplicates} replays skipped), ${words} words, ${counts.length} distinct`);
  for (const [w, n] of counts.slice(0, Number(args.top))) console.log(`${String(n).padStart(8)}  ${w}`);
}
