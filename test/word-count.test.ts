/**
 * examples/word-count end to end: a topic of seeded sentences, the topology run as a child process and SIGKILLed
 * mid-stream again and again, restarted each time, then drained and stopped with SIGTERM. The counts must equal the
 * counts of the sentences sent, exactly: the spout replays what was not committed, and the sink skips what it had
 * applied already. Also runs the README's walk (produce.ts, then topology.ts --until-idle).
 *
 * Replay: WORD_COUNT_SEED=<seed> node --import tsx --test test/word-count.test.ts
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient, partitionName } from '../sdk/index.js';
import { rng } from '../sdk/protocol/seeded-rng.js';
import { expectedCounts, sentences } from '../examples/word-count/corpus.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const ROOT = join(import.meta.dirname, '..');
const TOPOLOGY = join(ROOT, 'examples', 'word-count', 'topology.ts');
const PRODUCE = join(ROOT, 'examples', 'word-count', 'produce.ts');
const PARTITIONS = 4;
const MESSAGES = 6000;
const KILLS = 8;
/** Runs that kill themselves (`--crash-after`) between making a batch durable and acking it; the others are killed at random. */
const FAILPOINT_RUNS = [2, 5];
const MAX_PENDING = 100;
/** More than 1024 per partition in one run, as a user's first run would be. */
const README_MESSAGES = 5000;
/** Bytes of a stored record before its payload (length, crc, id, flag). */
const RECORD_HEADER = 20;

interface Summary {
  readonly reason: string;
  readonly messages: number;
  readonly applied: number;
  readonly duplicates: number;
  readonly words: number;
  readonly counts: Record<string, number>;
}

/** A run of the topology: its progress as printed (`--progress`), its summary (`--json`), its exit. */
class TopologyRun {
  /** Messages in the store, from the last `started` or `progress` line. */
  messages = -1;
  /** Replays this run skipped, from the last progress line. */
  duplicates = 0;
  cutBytes = 0;
  summary: Summary | undefined;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', TOPOLOGY, '--progress', '--json', ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      live.delete(this.child);
      resolve({ code, signal });
    }));
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        this.line(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk; });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  private line(l: string): void {
    const started = /^started messages=(\d+) cut=(\d+)$/.exec(l);
    const progress = /^progress messages=(\d+) applied=\d+ duplicates=(\d+) /.exec(l);
    if (started !== null) {
      this.messages = Number(started[1]);
      this.cutBytes = Number(started[2]);
    } else if (progress !== null) {
      this.messages = Number(progress[1]);
      this.duplicates = Number(progress[2]);
    } else if (l.startsWith('{')) {
      this.summary = JSON.parse(l) as Summary;
    }
  }
}

const live = new Set<ChildProcess>();

describe('examples/word-count', () => {
  let tb: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  before(async () => {
    tb = await startTestBroker({ 'system.numPartitions': String(PARTITIONS), 'system.longPollTimeoutMs': '200' });
    dir = await tempDir('metaq-word-count-');
  });
  after(async () => {
    for (const child of live) child.kill('SIGKILL');
    await tb.dispose();
    await dir.remove();
  });

  it('counts every message exactly once although the topology is SIGKILLed mid-stream and restarted', async () => {
    const seed = process.env.WORD_COUNT_SEED === undefined ? (Math.random() * 2 ** 32) >>> 0
      : Number(process.env.WORD_COUNT_SEED) >>> 0;
    const topic = uniqueName('sentences');
    const group = uniqueName('word-count');
    const state = join(dir.path, 'state');
    const random = rng(seed);

    // Send the corpus, remembering where each partition's log ends.
    const corpus = [...sentences(seed, MESSAGES)];
    const ends = new Map<string, number>();
    const client = await createClient({ serverUrl: `meta://127.0.0.1:${tb.port}` });
    try {
      const producer = client.producer();
      for (let i = 0; i < MESSAGES; i += 500) {
        const results = await Promise.all(corpus.slice(i, i + 500).map((s, j) =>
          producer.send({ topic, value: s.text, partition: (i + j) % PARTITIONS })));
        for (const [j, r] of results.entries()) {
          const end = r.offset + RECORD_HEADER + Buffer.byteLength(corpus[i + j]!.text);
          ends.set(partitionName(r.partition), Math.max(ends.get(partitionName(r.partition)) ?? 0, end));
        }
      }
    } finally {
      await client.close();
    }

    const args = ['--server', `meta://127.0.0.1:${tb.port}`, '--topic', topic, '--group', group, '--state', state,
      '--max-pending', String(MAX_PENDING)];
    const started = Date.now();
    const kills: { at: number; failpoint: boolean; duplicates: number; cutBytes: number }[] = [];
    for (let k = 0; k < KILLS; k++) {
      // Kill points spread over the stream, each at a random place within its share.
      const target = Math.floor(MESSAGES * (0.05 + 0.8 * (k + random()) / KILLS));
      const failpoint = FAILPOINT_RUNS.includes(k);
      const run = new TopologyRun(failpoint ? [...args, '--crash-after', String(target)] : args);
      await waitFor(() => !run.running || run.messages >= target,
        { timeoutMs: 30_000, what: `the topology to count ${target} messages (run ${k + 1})` });
      if (!failpoint) {
        assert.ok(run.running, `run ${k + 1} exited before its kill: ${run.stderr}`);
        run.kill('SIGKILL');
      }
      const exit = await run.exited;
      assert.equal(exit.signal, 'SIGKILL', `run ${k + 1}: ${run.stderr}`);
      kills.push({ at: run.messages, failpoint, duplicates: run.duplicates, cutBytes: run.cutBytes });
    }

    // Drain: run until every message is in the store, then stop gracefully.
    const last = new TopologyRun(args);
    await waitFor(() => !last.running || last.messages === MESSAGES,
      { timeoutMs: 30_000, what: 'the last run to count every message' });
    last.kill('SIGTERM');
    const exit = await last.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, last.stderr);
    const summary = last.summary;
    assert.ok(summary !== undefined, 'the last run printed its summary');

    const duplicates = [...kills.map((k) => k.duplicates), summary.duplicates];
    console.log(`word-count: seed ${seed}, ${MESSAGES} messages over ${PARTITIONS} partitions, ${KILLS} SIGKILLs (${FAILPOINT_RUNS.length} at ` +
      `the durable-before-ack failpoint) at ${kills.map((k) => `${k.at}${k.failpoint ? '*' : ''}`).join(', ')} counted; replays skipped by the sink per restart ` +
      `${duplicates.slice(1).join(', ')} (total ${duplicates.reduce((a, b) => a + b, 0)}, maxPending ${MAX_PENDING}); ` +
      `torn tails cut ${kills.filter((k) => k.cutBytes > 0).length}; ${Date.now() - started} ms`);

    assert.equal(kills.filter((k) => k.at < MESSAGES).length, KILLS, 'every kill landed mid-stream');
    assert.equal(summary.messages, MESSAGES, 'every message was applied');
    assert.deepEqual(summary.counts, Object.fromEntries([...expectedCounts(corpus)].sort((a, b) =>
      b[1] - a[1] || (a[0] < b[0] ? -1 : 1))), 'the counts are exact');
    assert.ok(duplicates.some((d) => d > 0), 'some restart replayed messages the sink had applied (it skipped them)');
    // A crashed run leaves at most maxPending messages applied beyond its committed offsets. A restart killed before
    // it re-applied all of them passes the rest on, so run j may skip up to maxPending for each crash before it.
    for (const [j, d] of duplicates.entries()) {
      assert.ok(d <= MAX_PENDING * j, `run ${j + 1} skipped ${d} replays, more than maxPending ${MAX_PENDING} x ${j} crashes`);
    }

    // The graceful stop committed everything: a next run would start at the end of every partition.
    const offsets = JSON.parse(await readFile(join(state, 'offsets.json'), 'utf8')) as
      Record<string, { offset: number; partition: { brokerId: number; partition: number } }[]>;
    const committed = new Map((offsets[group] ?? []).map((e) => [partitionName(e.partition), e.offset]));
    assert.deepEqual(committed, ends);
  });

  it('runs as the README shows: produce.ts, then topology.ts until idle prints the counts produce.ts expects', async () => {
    const topic = uniqueName('readme-sentences');
    const server = `meta://127.0.0.1:${tb.port}`;
    const produced = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', PRODUCE, '--server', server, '--topic', topic,
        '--count', String(README_MESSAGES), '--seed', '7', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`produce.ts exited ${code}`))));
    });
    const expected = JSON.parse(produced) as { messages: number; words: number; counts: Record<string, number> };
    const run = new TopologyRun(['--server', server, '--topic', topic, '--group', uniqueName('readme'),
      '--state', join(dir.path, 'readme-state'), '--until-idle', '1500']);
    await waitFor(() => !run.running, { timeoutMs: 30_000, what: 'topology.ts to go idle and stop' }).catch((e: unknown) => {
      throw new Error(`${(e as Error).message} (${run.messages} of ${README_MESSAGES} counted)`);
    });
    const exit = await run.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, run.stderr);
    assert.equal(run.summary?.reason, 'idle');
    assert.equal(run.summary.messages, expected.messages);
    assert.equal(run.summary.words, expected.words);
    assert.deepEqual(run.summary.counts, expected.counts);
  });
});
