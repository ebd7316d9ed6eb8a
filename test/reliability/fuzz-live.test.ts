/**
 * T7, live: a real broker process takes seeded, mutated frames from 8 connections while a canary client keeps
 * producing and consuming. Seeds are the golden frames (test/fixtures/frames/frames.json).
 *
 * Each fuzz connection works in rounds: a few mutated frames, then a `version` probe. A round ends when the probe
 * is answered or the broker closes the connection (then the next round opens a new one); a round that gets
 * neither within idleTimeoutMs + longPollTimeoutMs + 2 s is a hang. Wrong-checksum puts go, unmutated and first in
 * their round (the stream is in sync there), to a dedicated topic that must stay empty.
 *
 * The broker runs with an explicit topic list (no wildcard), so mutated topic names are refused rather than
 * creating partitions: file descriptors and memory then measure leaks, not new topics.
 *
 * Replay: FUZZ_SEED=<seed> [FUZZ_LIVE_FRAMES=<n>] node --import tsx --test test/reliability/fuzz-live.test.ts
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parsePartitionDirName } from '../../broker/store/segment-files.js';
import { TX_JOURNAL_DIR } from '../../broker/transaction/transaction-manager.js';
import { verifyDataDir } from '../../broker/store/verify.js';
import { encodePut } from '../../sdk/protocol/encode.js';
import { parsePutResult } from '../../sdk/protocol/message-id.js';
import { crc32Masked, decodeMessageSet } from '../../sdk/protocol/record.js';
import { ResponseDecoder } from '../../sdk/protocol/response-decoder.js';
import { killSpawnedBrokers, spawnBroker } from '../harness/broker-process.js';
import { RawClient } from '../harness/raw-client.js';
import { tempDir } from '../harness/temp-dir.js';
import { waitFor } from '../harness/wait-for.js';
import { seededRandom, seedFrom } from './history.js';
import { FrameMutator, type Rng } from './frame-mutator.js';

const WORKERS = 8;
const IDLE_TIMEOUT_MS = 300;
const LONG_POLL_MS = 500;
const ROUND_DEADLINE_MS = IDLE_TIMEOUT_MS + LONG_POLL_MS + 2000;
const TIME_BUDGET_MS = 60_000;
const CANARY_TOPIC = 'fuzz-canary';
const BADCRC_TOPIC = 'fuzz-badcrc';
const SEED_TOPICS = ['test', 'meta-test', 'orders'];
const PROBE_OPAQUE = 1_900_000_000;
const BADCRC_OPAQUE = 2_000_000_000;

const SERVER_INI = `[system]
brokerId=0
numPartitions=4
unflushThreshold=0
idleTimeoutMs=${IDLE_TIMEOUT_MS}
longPollTimeoutMs=${LONG_POLL_MS}
[zookeeper]
zk.zkEnable=false
${[...SEED_TOPICS, CANARY_TOPIC, BADCRC_TOPIC].map((t) => `[topic=${t}]`).join('\n')}
`;

interface FuzzStats {
  frames: number;
  badCrcPuts: number;
  badCrcAccepted: number;
  connections: number;
  /** Closed by the broker after a 400 (framing error) / without one (idle timeout, quit). */
  closes: number;
  silentCloses: number;
  rounds: number;
  hangs: string[];
  badReplies: string[];
  codes: Map<string, number>;
  slowestMs: number;
  slowest: string;
}

describe('reliability/T7 live protocol fuzz', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    await killSpawnedBrokers();
    for (const c of cleanups) await c();
  });

  it('survives mutated frames on 8 connections with the canary unaffected, no leak and no bad-CRC record', async () => {
    const seed = seedFrom('FUZZ_SEED');
    const budget = Number(process.env.FUZZ_LIVE_FRAMES ?? 50_000);
    console.log(`T7 fuzz-live: seed=${seed} frames=${budget} (replay: FUZZ_SEED=${seed} FUZZ_LIVE_FRAMES=${budget})`);
    const dir = await tempDir('metaq-fuzz-live-');
    cleanups.push(() => dir.remove());
    const configFile = join(dir.path, 'server.ini');
    await writeFile(configFile, SERVER_INI);
    const dataDir = join(dir.path, 'data');
    const broker = await spawnBroker({ dataDir, configFile, logLevel: 'warn' });

    const canary = await Canary.start(broker.port);
    await warmUp(canary.client);
    await canary.runFor(1000);
    const baseline = { rss: await broker.rssBytes(), fds: await broker.openFds(), p99: canary.p99() };
    canary.resetLatencies();

    const stats: FuzzStats = { frames: 0, badCrcPuts: 0, badCrcAccepted: 0, connections: 0, closes: 0, silentCloses: 0, rounds: 0,
      hangs: [], badReplies: [], codes: new Map(), slowestMs: 0, slowest: '' };
    let maxRss = baseline.rss;
    const sampler = setInterval(() => {
      broker.rssBytes().then((r) => { maxRss = Math.max(maxRss, r); }, () => undefined);
    }, 200);
    const t0 = performance.now();
    const deadline = t0 + TIME_BUDGET_MS;
    const canaryRun = canary.runUntil(() => stats.frames >= budget || performance.now() > deadline);
    // One generator per worker: each worker's frame sequence is a function of the seed alone.
    const seeds = loadSeedFrames();
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => {
      const rng = seededRandom(seed + w + 1);
      return fuzzWorker(broker.port, new FrameMutator(seeds, rng), rng, stats,
        () => stats.frames >= budget || performance.now() > deadline);
    }));
    await canaryRun;
    const fuzzSeconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);

    const fdsAfter = await waitFor(async () => {
      const f = await broker.openFds();
      return f.total <= baseline.fds.total ? f : undefined;
    }, { timeoutMs: 5000, what: `broker fds back to ${baseline.fds.total}` }).catch(async () => broker.openFds());
    const version = await canary.client.version();
    const badCrcBytes = await partitionBytes(canary.client, BADCRC_TOPIC);
    const errorLines = broker.logRecords().filter((r) => typeof r['level'] === 'number' && r['level'] >= 50);
    const codes = [...stats.codes].sort().map(([k, v]) => `${k}:${v}`).join(' ');
    console.log(`T7 fuzz-live: seed=${seed} frames=${stats.frames} (+${stats.badCrcPuts} bad-CRC puts) in ` +
      `${fuzzSeconds.toFixed(1)} s, connections=${stats.connections} rounds=${stats.rounds} closes after 400/other=${stats.closes - stats.silentCloses}/${stats.silentCloses} ` +
      `hangs=${stats.hangs.length} replies{${codes}} canary ops=${canary.ops} errors=${canary.errors.length} ` +
      `canary p99 baseline/during=${baseline.p99.toFixed(1)}/${canary.p99().toFixed(1)} ms ` +
      `rss base/max=${mib(baseline.rss)}/${mib(maxRss)} MiB fds base/after=${baseline.fds.total}/${fdsAfter.total} ` +
      `slowest round=${stats.slowestMs.toFixed(0)} ms (${stats.slowest}) broker error lines=${errorLines.length}`);

    assert.ok(broker.alive(), `broker died:\n${broker.logs().slice(-3000)}`);
    assert.match(version, /^\d+\.\d+/);
    assert.ok(stats.frames >= budget, `only ${stats.frames} of ${budget} frames within ${TIME_BUDGET_MS} ms`);
    assert.deepEqual(stats.hangs, [], 'rounds with neither a reply nor a close');
    assert.deepEqual(stats.badReplies, [], 'malformed replies from the broker');
    assert.deepEqual(canary.errors, [], 'canary errors');
    assert.equal(stats.badCrcAccepted, 0, 'wrong-checksum puts answered 200');
    assert.equal(badCrcBytes, 0, 'bytes in the bad-CRC topic');
    assert.deepEqual(errorLines.map((r) => r['msg']), [], 'broker logged errors');
    assert.ok(maxRss - baseline.rss < 50 * 1024 * 1024, `RSS grew by ${mib(maxRss - baseline.rss)} MiB`);
    assert.ok(fdsAfter.total <= baseline.fds.total, `fds ${JSON.stringify(fdsAfter)} vs baseline ${JSON.stringify(baseline.fds)}`);

    // Control: the emptiness check sees a record that does reach the topic.
    assert.equal((await canary.client.put(BADCRC_TOPIC, 2, 'control')).code, 200);
    assert.ok(await partitionBytes(canary.client, BADCRC_TOPIC) > 0, 'the bad-CRC topic check cannot see a record');
    await canary.client.close();
    const exit = await broker.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    const verify = await verifyDataDir(dataDir);
    assert.ok(verify.ok, JSON.stringify(verify.problems.slice(0, 5)));
  });

  it('keeps a topic name with a path separator inside the data dir (or refuses it)', async () => {
    const dir = await tempDir('metaq-topic-path-');
    cleanups.push(() => dir.remove());
    const dataDir = join(dir.path, 'data');
    const broker = await spawnBroker({ dataDir });
    const client = await RawClient.connect(broker.port);
    const outcomes: string[] = [];
    for (const topic of ['../escape', 'nested/dir', '..', '.']) {
      const r = await client.put(topic, 0, 'x');
      outcomes.push(`${topic}: ${r.code}`);
    }
    await client.close();
    await broker.stop();
    const outside = (await readdir(dir.path)).filter((n) => n !== 'data');
    const strays = (await readdir(dataDir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && e.name !== TX_JOURNAL_DIR && parsePartitionDirName(e.name) === undefined).map((e) => e.name);
    assert.deepEqual({ outside, strays }, { outside: [], strays: [] },
      `put answers: ${outcomes.join(', ')}; entries outside the data dir, or directories inside it that are not partitions`);
  });
});

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function loadSeedFrames(): Buffer[] {
  const path = new URL('../fixtures/frames/frames.json', import.meta.url);
  const raw = JSON.parse(readFileSync(path, 'utf8')) as { hex: string }[];
  return raw.map((f) => Buffer.from(f.hex, 'hex'));
}

/** Writes one record to every partition of the seed and canary topics and touches the bad-CRC topic's partitions. */
async function warmUp(client: RawClient): Promise<void> {
  for (const topic of [...SEED_TOPICS, CANARY_TOPIC]) {
    for (let p = 0; p < 4; p++) assert.equal((await client.put(topic, p, 'warm-up')).code, 200);
  }
  assert.equal(await partitionBytes(client, BADCRC_TOPIC), 0);
}

/** Bytes readable in all 4 partitions of `topic` (each get from 0 ends in a 404 after the long poll). */
async function partitionBytes(client: RawClient, topic: string): Promise<number> {
  const sizes = await Promise.all([0, 1, 2, 3].map(async (p) => {
    const r = await client.get(topic, 'fuzz-check', p, 0, 1024 * 1024);
    if (r.type === 'value') return r.body.length;
    assert.equal(r.code, 404, `get ${topic}-${p}: ${r.code} ${r.body.toString()}`);
    return 0;
  }));
  return sizes.reduce((a, b) => a + b, 0);
}

/** Puts then reads back each message, checking payload and id; every failure is kept. */
class Canary {
  ops = 0;
  readonly errors: string[] = [];
  private latencies: number[] = [];
  private seq = 0;

  private constructor(readonly client: RawClient) {}

  static async start(port: number): Promise<Canary> {
    return new Canary(await RawClient.connect(port));
  }

  async runFor(ms: number): Promise<void> {
    const end = performance.now() + ms;
    await this.runUntil(() => performance.now() > end);
  }

  async runUntil(done: () => boolean): Promise<void> {
    while (!done() && this.errors.length < 20) await this.once();
  }

  p99(): number {
    const s = [...this.latencies].sort((a, b) => a - b);
    return s.length === 0 ? 0 : s[Math.floor(0.99 * (s.length - 1))]!;
  }

  resetLatencies(): void {
    this.latencies = [];
  }

  private async once(): Promise<void> {
    const seq = this.seq++;
    const payload = Buffer.from(`canary ${seq} ${'c'.repeat(seq % 200)}`);
    const t = performance.now();
    try {
      const put = await this.client.put(CANARY_TOPIC, seq % 4, payload);
      if (put.code !== 200) throw new Error(`put answered ${put.code} ${put.body.toString()}`);
      const ack = parsePutResult(put.body);
      const got = await this.client.get(CANARY_TOPIC, 'canary', ack.partition, ack.offset, 4096);
      if (got.type !== 'value') throw new Error(`get answered ${got.code} ${got.body.toString()}`);
      const m = decodeMessageSet(got.body, { baseOffset: ack.offset }).messages[0];
      if (m === undefined || !m.payload.equals(payload) || m.id !== ack.id) throw new Error(`read back differs at ${ack.offset}`);
      this.ops++;
      this.latencies.push(performance.now() - t);
    } catch (e) {
      this.errors.push(`op ${seq}: ${(e as Error).message}`);
    }
  }
}

/** One fuzz connection after another, round by round, until `done()`. */
async function fuzzWorker(port: number, mutator: FrameMutator, rng: Rng, stats: FuzzStats,
  done: () => boolean): Promise<void> {
  let conn: FuzzConnection | undefined;
  let probe = 0;
  let badCrc = 0;
  try {
    while (!done()) {
      if (conn === undefined || conn.closed) {
        conn = await FuzzConnection.open(port, stats);
        stats.connections++;
      }
      const parts: Buffer[] = [];
      const names: string[] = [];
      if (rng.next() < 0.05) {
        const opaque = BADCRC_OPAQUE + badCrc++;
        parts.push(badCrcPut(rng, opaque));
        conn.badCrcOpaques.add(opaque);
        stats.badCrcPuts++;
        names.push('bad-crc');
      }
      for (let k = rng.int(1, 6); k > 0; k--) {
        if (rng.next() < 0.2) parts.push(mutator.valid());
        const f = mutator.next();
        parts.push(f.bytes);
        names.push(f.name);
        stats.frames++;
      }
      const opaque = PROBE_OPAQUE + probe++;
      const t = performance.now();
      const outcome = await conn.round(Buffer.concat(parts), opaque, rng);
      stats.rounds++;
      const ms = performance.now() - t;
      if (outcome === 'hang') {
        stats.hangs.push(`${names.join(',')}: ${Buffer.concat(parts).subarray(0, 160).toString('hex')}`);
        conn.destroy();
      } else {
        if (outcome === 'closed') {
          stats.closes++;
          if (!conn.saw400) stats.silentCloses++;
        }
        if (ms > stats.slowestMs) {
          stats.slowestMs = ms;
          stats.slowest = `${outcome}: ${names.join(',')}`;
        }
      }
      if (!conn.closed && rng.next() < 0.1) await conn.end(rng.next() < 0.5);
    }
  } finally {
    conn?.destroy();
  }
}

function badCrcPut(rng: Rng, opaque: number): Buffer {
  const body = Buffer.alloc(rng.int(1, 300), rng.int(0, 255));
  const crc = crc32Masked(body);
  // Never -1 (NO_CHECKSUM: "not supplied", which the broker accepts) and never the right value.
  const wrong = (crc + rng.int(1, 0x7ffffffe)) % 0x80000000;
  return encodePut({ topic: BADCRC_TOPIC, partition: rng.int(0, 3), flag: 0, checksum: wrong, opaque, body });
}

/** A plain socket whose replies are decoded and tallied; the broker must only ever send well-formed frames. */
class FuzzConnection {
  closed = false;
  saw400 = false;
  readonly badCrcOpaques = new Set<number>();
  private readonly decoder = new ResponseDecoder({ maxBodyBytes: 64 * 1024 * 1024 });
  private waiting: { opaque: number; resolve: (o: 'answered' | 'closed') => void } | undefined;

  private constructor(private readonly socket: Socket, private readonly stats: FuzzStats) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.resolve('closed');
    });
  }

  static async open(port: number, stats: FuzzStats): Promise<FuzzConnection> {
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new FuzzConnection(socket, stats);
  }

  /** Writes `bytes` (in 1-3 pieces) and a `version` probe; resolves on the probe's reply, a close, or a hang. */
  round(bytes: Buffer, opaque: number, rng: Rng): Promise<'answered' | 'closed' | 'hang'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting = undefined; resolve('hang'); }, ROUND_DEADLINE_MS);
      this.waiting = { opaque, resolve: (o) => { clearTimeout(timer); this.waiting = undefined; resolve(o); } };
      if (this.closed) { this.waiting.resolve('closed'); return; }
      let pos = 0;
      for (let pieces = rng.int(1, 3); pieces > 1 && pos < bytes.length; pieces--) {
        const cut = rng.int(pos, bytes.length);
        this.socket.write(bytes.subarray(pos, cut));
        pos = cut;
      }
      this.socket.write(Buffer.concat([bytes.subarray(pos), Buffer.from(`version ${opaque}\r\n`)]));
    });
  }

  /** Closes from our side: half-close (the broker must finish and close) or reset. */
  async end(graceful: boolean): Promise<void> {
    if (!graceful) { this.destroy(); return; }
    this.socket.end();
    await waitFor(() => this.closed, { timeoutMs: ROUND_DEADLINE_MS, what: 'the broker to close a half-closed connection' })
      .catch((e: Error) => { this.stats.hangs.push(e.message); this.destroy(); });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
      for (let r = this.decoder.next(); r !== undefined; r = this.decoder.next()) {
        const key = r.type === 'value' ? 'value' : String(r.code);
        if (r.type === 'result' && r.code === 400) this.saw400 = true;
        this.stats.codes.set(key, (this.stats.codes.get(key) ?? 0) + 1);
        if (r.type === 'result' && this.badCrcOpaques.delete(r.opaque) && r.code === 200) this.stats.badCrcAccepted++;
        if (this.waiting !== undefined && r.opaque === this.waiting.opaque) this.waiting.resolve('answered');
      }
    } catch (e) {
      this.stats.badReplies.push(`${(e as Error).message}`);
      this.destroy();
    }
  }
}
