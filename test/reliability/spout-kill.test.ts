/**
 * The `metaq spout` process killed between an emit and its ack, at least 20 times, under a driver that plays a Storm
 * worker (test/harness/storm-driver.ts) with topology.max.spout.pending unset (Storm's default: it calls `next` whatever
 * is pending, so the cap is the spout's own, `--max-pending`), and acks each emitted tuple after a random short delay,
 * so several are pending at every kill. A kill always follows an emit whose ack was not sent.
 *
 * Pass: every produced message was acked at least once (lost = 0); the re-emits charged to a kill (messages the killed
 * process emitted that a later one emitted again) are at most maxPending per kill; pending never exceeds maxPending;
 * the draining process exits 0 when its stdin ends.
 *
 * Negative control: the same kills with a spout whose cap is ten times larger replay more than maxPending per kill,
 * and the check sees it.
 *
 * Replay: REL_SEED=<seed> node --import tsx --test test/reliability/spout-kill.test.ts
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from '../../sdk/index.js';
import { StormDriver } from '../harness/storm-driver.js';
import { startTestBroker, type TestBroker } from '../harness/test-broker.js';
import { tempDir, uniqueName } from '../harness/temp-dir.js';
import { seededRandom, seedFrom } from './history.js';

const PARTITIONS = 4;
const MESSAGES = 3_000;
const MAX_PENDING = 40;
const KILLS = 20;
const ACK_DELAY_MS = 15;
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'metaq.js');
/** A guard against a hang; a run takes about 15 s. */
const DEADLINE_MS = 120_000;

interface Figures {
  seed: number;
  maxPending: number;
  kills: number;
  produced: number;
  lost: number;
  emits: number;
  replaysTotal: number;
  maxReplaysPerKill: number;
  maxPendingSeen: number;
  pendingAtKill: number[];
  ms: number;
}

/** The driver's view of all incarnations. */
class Ledger {
  readonly acked = new Set<string>();
  /** value → the incarnation that emitted it last. */
  private readonly lastEmitter = new Map<string, number>();
  /** Per incarnation: its emits that a later incarnation emitted again. */
  readonly replaysCharged: number[] = [];
  emits = 0;
  replaysTotal = 0;

  emitted(value: string, incarnation: number): void {
    this.emits++;
    const before = this.lastEmitter.get(value);
    if (before !== undefined && before !== incarnation) {
      this.replaysCharged[before] = (this.replaysCharged[before] ?? 0) + 1;
      this.replaysTotal++;
    }
    this.lastEmitter.set(value, incarnation);
  }
}

interface Scenario {
  readonly tb: TestBroker;
  readonly dir: string;
  readonly maxPending: number;
  readonly kills: number;
  /** Emits before a kill: from, to. */
  readonly killAfter: readonly [number, number];
  readonly drain: boolean;
  readonly seed: number;
  /** False: the worker never acks (a stuck bolt), so nothing is committed and all emitted is pending at a kill. */
  readonly acks?: boolean;
}

/** Produces MESSAGES messages to a new topic, then runs the kill cycles (and the drain); returns the figures. */
async function killCycles(s: Scenario, track: (d: StormDriver) => void): Promise<Figures> {
  const rng = seededRandom(s.seed);
  const started = Date.now();
  const topic = uniqueName('spout-kill');
  const client = await createClient({ serverUrl: `meta://127.0.0.1:${s.tb.port}` });
  const producer = client.producer();
  for (let i = 0; i < MESSAGES; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, MESSAGES - i) }, (_, j) =>
      producer.send({ topic, value: `m${i + j}`, partition: (i + j) % PARTITIONS })));
  }
  await client.close();

  const args = [BIN, 'spout', '--topic', topic, '--group', 'g', '--server', `meta://127.0.0.1:${s.tb.port}`,
    '--offsets-file', join(s.dir, `${topic}.offsets.json`), '--recover-dir', join(s.dir, `${topic}.recover`),
    '--max-pending', String(s.maxPending)];
  const ledger = new Ledger();
  const pendingAtKill: number[] = [];
  let maxPendingSeen = 0;

  /** One worker: acks after random delays; killed after `killAfter` emits, or drains everything when undefined. */
  async function incarnation(n: number, killAfter: number | undefined): Promise<void> {
    const d = await StormDriver.spawn(process.execPath, args, { pidDir: s.dir });
    track(d);
    const pending = new Map<string, { value: string; due: number }>();
    let emitted = 0;
    for (;;) {
      if (Date.now() - started > DEADLINE_MS) {
        throw new Error(`out of time in incarnation ${n}: ${ledger.acked.size}/${MESSAGES} acked, ${pending.size} pending`);
      }
      const now = Date.now();
      let due: [string, { value: string; due: number }] | undefined;
      for (const p of pending) if (p[1].due <= now && (due === undefined || p[1].due < due[1].due)) due = p;
      if (due !== undefined && s.acks !== false) {
        await d.ack(due[0]);
        ledger.acked.add(due[1].value);
        pending.delete(due[0]);
        continue;
      }
      if (killAfter === undefined && ledger.acked.size === MESSAGES && pending.size === 0) break;
      const reply = await d.next();
      for (const e of reply.emits) {
        const value = String(e.tuple[0]);
        ledger.emitted(value, n);
        pending.set(String(e.id), { value, due: Date.now() + rng.int(0, ACK_DELAY_MS) });
        emitted++;
      }
      maxPendingSeen = Math.max(maxPendingSeen, pending.size);
      if (killAfter !== undefined && emitted >= killAfter && reply.emits.length > 0) {
        d.kill('SIGKILL');
        assert.equal(await d.exited(), 'SIGKILL');
        pendingAtKill.push(pending.size);
        return;
      }
    }
    d.endInput();
    assert.equal(await d.exited(), 0, 'the draining spout exits 0 when stdin ends');
  }

  for (let k = 0; k < s.kills; k++) await incarnation(k, rng.int(s.killAfter[0], s.killAfter[1]));
  if (s.drain) await incarnation(s.kills, undefined);

  let lost = 0;
  for (let i = 0; i < MESSAGES; i++) if (!ledger.acked.has(`m${i}`)) lost++;
  return {
    seed: s.seed, maxPending: s.maxPending, kills: pendingAtKill.length, produced: MESSAGES, lost, emits: ledger.emits,
    replaysTotal: ledger.replaysTotal, maxReplaysPerKill: Math.max(0, ...Array.from(ledger.replaysCharged, (r) => r ?? 0)),
    maxPendingSeen, pendingAtKill, ms: Date.now() - started,
  };
}

describe('reliability: metaq spout killed between emit and ack', () => {
  const cleanups: Array<() => Promise<void>> = [];
  let tb: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let driver: StormDriver | undefined;
  const track = (d: StormDriver): void => { driver = d; };

  before(async () => {
    tb = await startTestBroker({ 'system.numPartitions': String(PARTITIONS), 'system.longPollTimeoutMs': '200' });
    cleanups.push(() => tb.dispose());
    dir = await tempDir('metaq-spout-kill-');
    cleanups.push(() => dir.remove());
  });

  after(async () => {
    driver?.kill('SIGKILL');
    for (const c of cleanups.reverse()) await c();
  });

  it(`loses nothing across ${KILLS} SIGKILLs, and replays at most maxPending per kill`, async () => {
    const seed = seedFrom('REL_SEED');
    console.log(`spout-kill: seed=${seed} (replay: REL_SEED=${seed})`);
    const figures = await killCycles({ tb, dir: dir.path, maxPending: MAX_PENDING, kills: KILLS, killAfter: [1, 250],
      drain: true, seed }, track);
    console.log(`spout-kill result: ${JSON.stringify(figures)}`);
    assert.equal(figures.kills, KILLS);
    assert.equal(figures.lost, 0, 'every produced message was acked at least once');
    assert.ok(figures.maxReplaysPerKill <= MAX_PENDING, `replays per kill ${figures.maxReplaysPerKill} ≤ maxPending ${MAX_PENDING}`);
    assert.ok(figures.maxPendingSeen <= MAX_PENDING, `pending ${figures.maxPendingSeen} ≤ maxPending`);
  });

  it('negative control: with a cap ten times larger, replays per kill exceed maxPending and the check sees it', async () => {
    const seed = (seedFrom('REL_SEED') ^ 0x5eed) >>> 0;
    // No acks: what a kill replays does not depend on how fast acks and commits happened to be (timing-free).
    const figures = await killCycles({ tb, dir: dir.path, maxPending: MAX_PENDING * 10, kills: 3, killAfter: [200, 300],
      drain: false, seed, acks: false }, track);
    console.log(`spout-kill control: ${JSON.stringify(figures)}`);
    assert.ok(figures.maxReplaysPerKill > MAX_PENDING, `the control replayed ${figures.maxReplaysPerKill} after one kill`);
  });
});
