/**
 * T10: a consumer killed with SIGKILL between processing and offset commit. The consumer process
 * (fixtures/crash-consumer.ts) appends every processed message to a sink file with fdatasync, acks, and commits
 * every K acks and every second. It is killed at random moments (30 times) and exactly at the failpoint
 * afterProcessBeforeCommit (10 times), restarted each time, then drained and stopped gracefully.
 *
 * Pass: every produced message is in the sink (lost = 0); duplicates per crash ≤ K + in-flight; after every crash
 * the committed offset of each partition is ≤ the end of what the sink shows processed; after the drain, committed =
 * log end. Negative control: a consumer that commits before processing, killed in between, loses messages and the
 * same check reports them.
 *
 * Replay: REL_SEED=<seed> node --import tsx --test test/reliability/consumer-crash.test.ts
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RawClient } from '../harness/raw-client.js';
import { startTestBroker, type TestBroker } from '../harness/test-broker.js';
import { tempDir, uniqueName } from '../harness/temp-dir.js';
import { waitFor } from '../harness/wait-for.js';
import { seededRandom, seedFrom } from './history.js';
import { parsePutResult } from '../../sdk/protocol/message-id.js';

const PARTITIONS = 4;
const MESSAGES = 12_000;
const K = 100;
/** Messages a consumer may hold delivered but unacked: one per partition (ordered) plus concatMap's buffer. */
const IN_FLIGHT = 1000;
const FIXTURE = join(import.meta.dirname, 'fixtures', 'crash-consumer.ts');

interface Scenario {
  readonly tb: TestBroker;
  readonly topic: string;
  readonly group: string;
  readonly dir: string;
  /** Log end offset of each partition after producing. */
  readonly ends: number[];
}

async function produce(tb: TestBroker, dir: string, tag: string): Promise<Scenario> {
  const topic = uniqueName(`t10${tag}`);
  const raw = await RawClient.connect(tb.port);
  const ends = new Array<number>(PARTITIONS).fill(0);
  for (let i = 0; i < MESSAGES; i += 500) {
    const rs = await Promise.all(Array.from({ length: Math.min(500, MESSAGES - i) }, (_, j) =>
      raw.put(topic, (i + j) % PARTITIONS, `m${i + j}`)));
    for (const [j, r] of rs.entries()) {
      assert.equal(r.code, 200);
      const p = (i + j) % PARTITIONS;
      ends[p] = Math.max(ends[p]!, parsePutResult(r.body.toString()).offset + 20 + `m${i + j}`.length);
    }
  }
  await raw.close();
  return { tb, topic, group: uniqueName('g'), dir, ends };
}

interface SinkLine { readonly value: string; readonly partition: number; readonly nextOffset: number }

function readSink(file: string): SinkLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
    const [value, partition, nextOffset] = l.split(' ');
    return { value: value!, partition: Number(partition), nextOffset: Number(nextOffset) };
  });
}

/** Committed offsets of the group from the local offset file (MetaQ's JSON layout). */
function readCommitted(file: string, group: string): Map<number, number> {
  const out = new Map<number, number>();
  if (!existsSync(file)) return out;
  const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Array<{ offset: number; partition: { partition: number } }>>;
  for (const e of all[group] ?? []) out.set(e.partition.partition, e.offset);
  return out;
}

function startConsumer(s: Scenario, mode: 'correct' | 'commit-first', killAt?: number): ChildProcess {
  const opts = {
    port: s.tb.port, topic: s.topic, group: s.group, offsetsFile: join(s.dir, 'offsets.json'),
    recoverDir: join(s.dir, 'recover'), sink: join(s.dir, 'sink.txt'), mode, commitEvery: K,
    ...(killAt === undefined ? {} : { killAt }),
  };
  return spawn(process.execPath, ['--import', 'tsx', FIXTURE, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

interface CrashReport {
  crashes: number;
  lost: number;
  dupes: number;
  maxDupesPerCrash: number;
  commitAheadViolations: number;
}

/** Runs the crash cycles; checks after each crash that no committed offset is ahead of what was processed. */
async function crashCycles(s: Scenario, mode: 'correct' | 'commit-first', random: number, failpoint: number,
  rng: ReturnType<typeof seededRandom>): Promise<CrashReport> {
  const sinkFile = join(s.dir, 'sink.txt');
  const report: CrashReport = { crashes: 0, lost: 0, dupes: 0, maxDupesPerCrash: 0, commitAheadViolations: 0 };
  const seen = new Set<string>();
  let lines = 0;
  for (let cycle = 0; cycle < random + failpoint; cycle++) {
    const before = readSink(sinkFile).length;
    const atFailpoint = cycle >= random;
    const child = startConsumer(s, mode, atFailpoint ? rng.int(1, 3) * K : undefined);
    if (atFailpoint) {
      await waitFor(() => child.exitCode !== null || child.signalCode !== null,
        { timeoutMs: 60_000, what: 'the consumer to kill itself at its failpoint' });
    } else {
      // Let it process a random number of messages, then kill it wherever it is.
      const target = before + rng.int(1, 200);
      await waitFor(() => readSink(sinkFile).length >= target || child.exitCode !== null, { timeoutMs: 60_000 });
      child.kill('SIGKILL');
    }
    await exited(child);
    report.crashes++;
    const sink = readSink(sinkFile);
    let dupes = 0;
    for (const l of sink.slice(lines)) {
      if (seen.has(l.value)) dupes++;
      seen.add(l.value);
    }
    lines = sink.length;
    report.dupes += dupes;
    report.maxDupesPerCrash = Math.max(report.maxDupesPerCrash, dupes);
    const processedEnd = new Map<number, number>();
    for (const l of sink) processedEnd.set(l.partition, Math.max(processedEnd.get(l.partition) ?? 0, l.nextOffset));
    for (const [p, committed] of readCommitted(join(s.dir, 'offsets.json'), s.group)) {
      if (committed > (processedEnd.get(p) ?? 0)) report.commitAheadViolations++;
    }
  }
  return report;
}

/** Runs a correct consumer until it committed the end of every partition, then stops it gracefully. */
async function drain(s: Scenario): Promise<void> {
  const child = startConsumer(s, 'correct');
  await waitFor(() => {
    const committed = readCommitted(join(s.dir, 'offsets.json'), s.group);
    return s.ends.every((end, p) => committed.get(p) === end);
  }, { timeoutMs: 120_000 });
  child.kill('SIGTERM');
  assert.equal(await exited(child), 0, 'the drained consumer exits cleanly on SIGTERM');
}

function lostCount(s: Scenario): number {
  const got = new Set(readSink(join(s.dir, 'sink.txt')).map((l) => l.value));
  let lost = 0;
  for (let i = 0; i < MESSAGES; i++) if (!got.has(`m${i}`)) lost++;
  return lost;
}

describe('reliability/T10 consumer crash between processing and commit', () => {
  let tb: TestBroker;
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('loses nothing across 40 SIGKILLs, with duplicates bounded by the commit window', async () => {
    const seed = seedFrom('REL_SEED');
    console.log(`T10 consumer-crash: seed=${seed} (replay: REL_SEED=${seed})`);
    const rng = seededRandom(seed);
    tb = await startTestBroker({ 'system.longPollTimeoutMs': '200' });
    cleanups.push(() => tb.dispose());
    const dir = await tempDir('metaq-t10-');
    cleanups.push(() => dir.remove());
    const s = await produce(tb, dir.path, 'ok');
    const report = await crashCycles(s, 'correct', 30, 10, rng);
    await drain(s);
    const lost = lostCount(s);
    const committed = readCommitted(join(dir.path, 'offsets.json'), s.group);
    console.log(`T10 result: ${JSON.stringify({ ...report, lost, produced: MESSAGES })}`);
    assert.equal(lost, 0, 'every produced message was processed');
    assert.equal(report.commitAheadViolations, 0, 'no committed offset ahead of processing');
    assert.ok(report.maxDupesPerCrash <= K + IN_FLIGHT, `duplicates per crash ${report.maxDupesPerCrash} ≤ K + in-flight`);
    for (let p = 0; p < PARTITIONS; p++) assert.equal(committed.get(p), s.ends[p], `partition ${p} committed = log end`);
  });

  it('negative control: committing before processing loses messages and the check sees it', async () => {
    const rng = seededRandom(seedFrom('REL_SEED') ^ 0x5eed);
    const dir = await tempDir('metaq-t10c-');
    cleanups.push(() => dir.remove());
    const s = await produce(tb, dir.path, 'ctl');
    const report = await crashCycles(s, 'commit-first', 0, 5, rng);
    await drain(s);
    const lost = lostCount(s);
    console.log(`T10 control: ${JSON.stringify({ ...report, lost })}`);
    assert.ok(lost >= 5, `the control lost ${lost} messages (one per failpoint crash expected)`);
    assert.ok(report.commitAheadViolations > 0, 'the commit-ahead check fires on the control');
  });
});
