/**
 * Sends a seeded corpus of sentences to a topic (round robin over its partitions) and prints what the word count of
 * exactly those sentences must be, to compare with what topology.ts prints.
 *
 *   npx tsx examples/word-count/produce.ts --server meta://127.0.0.1:8123 --topic sentences --count 5000 --seed 7 \
 *     [--json] [--top 10]
 *
 * `--server` defaults to $METAQ_URL or meta://127.0.0.1:8123; `--zk <connect>` (or $METAQ_ZK) uses a cluster.
 * Sending the same seed twice sends the same sentences twice (twice the counts): they are new messages.
 */
import { parseArgs } from 'node:util';
import { from, lastValueFrom, map } from 'rxjs';
import { createClient } from '../../sdk/index.js';
import { expectedCounts, sentences } from './corpus.js';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    zk: { type: 'string' },
    topic: { type: 'string', default: 'sentences' },
    count: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
    top: { type: 'string', default: '10' },
  },
});

const count = Number(args.count);
const seed = Number(args.seed);
const zk = args.zk ?? process.env.METAQ_ZK;
const client = await createClient(zk === undefined
  ? { serverUrl: args.server ?? process.env.METAQ_URL ?? 'meta://127.0.0.1:8123' }
  : { zkConnect: zk });
try {
  const producer = client.producer();
  await lastValueFrom(from(sentences(seed, count)).pipe(
    map((s) => ({ topic: args.topic, value: s.text })),
    producer.sendAll(),
  ), { defaultValue: undefined });
} finally {
  await client.close();
}

const counts = [...expectedCounts(sentences(seed, count))].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
const words = counts.reduce((sum, [, n]) => sum + n, 0);
if (args.json) {
  console.log(JSON.stringify({ topic: args.topic, seed, messages: count, words, counts: Object.fromEntries(counts) }));
} else {
  console.log(`sent ${count} sentences (seed ${seed}) to ${args.topic}: ${words} words, ${counts.length} distinct`);
  for (const [w, n] of counts.slice(0, Number(args.top))) console.log(`${String(n).padStart(8)}  ${w}`);
}
