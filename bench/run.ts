/**
 * `npm run bench` (quick, under 5 minutes) / `npm run bench -- --full` (3 repetitions of the full sweep).
 *
 * Every case runs against the broker, the raw sink and (100 B and 1 KiB) JetStream, interleaved per
 * repetition, each on a fresh server in a fresh temp dir. The load generators are separate processes;
 * the server's CPU time (/proc/<pid>/stat, all threads and children) is sampled at the edges of the measured
 * window. Writes bench/results/<date>-<mode>.json and .md and prints the table.
 *
 * Options: --full | --quick, --reps N, --seconds S (window), --only a,b (case id substrings),
 * --no-broker, --no-raw, --no-jetstream, --no-sdk, --out DIR.
 *
 * After the matrix, the SDK cases (bench/sdk-compare.ts) measure the SDK's producer and consumer against the raw
 * protocol client on the same broker.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  TargetKinds, appliesTo, durabilityOf, fullMatrix, inFlightPerConnection, quickMatrix, type BenchCase, type MatrixSettings,
  type TargetKind,
} from './matrix.js';
import { ensureNatsServer, natsServerVersion } from './nats-peer.js';
import { collectEvents, spawnTracked, treeCpuSeconds } from './processes.js';
import { checkTargets, formatRate, markdown, summarize, type PhaseFigures, type RunMeta, type RunRecord } from './report.js';
import { BrokerUnavailableError, REPO_ROOT, startTarget, type Target } from './targets.js';
import { compareSdk, sdkCases, sdkMarkdown, type SdkComparison } from './sdk-compare.js';

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface Generated {
  readonly figures: PhaseFigures;
  readonly perPartition: number[] | null;
}

/** Runs one generator process (producer, publisher or consumer) and measures the server over its window. */
async function runGenerator(script: string, opts: object, serverPid: number): Promise<Generated> {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench', script), JSON.stringify(opts)], {
    cwd: REPO_ROOT,
  });
  let cpu0 = 0;
  let cpu1 = 0;
  let result: Record<string, unknown> | null = null;
  let fatal: string | null = null;
  const { code, stderr } = await collectEvents(child, (e) => {
    if (e.event === 'window-start') cpu0 = treeCpuSeconds(serverPid);
    else if (e.event === 'window-end') cpu1 = treeCpuSeconds(serverPid);
    else if (e.event === 'result') result = e;
    else if (e.event === 'fatal') fatal = String(e.error);
  });
  const r = result as Record<string, unknown> | null;
  if (r === null) throw new Error(`${script} exited ${code}: ${fatal ?? stderr.trim().slice(-400)}`);
  const num = (k: string): number => (typeof r[k] === 'number' ? r[k] : 0);
  const latency = r.latency as { p50Ms?: number; p99Ms?: number } | undefined;
  const serverCpuSec = Math.max(cpu1 - cpu0, 0);
  return {
    figures: {
      msgs: num('msgs'), seconds: num('seconds'), msgsPerSec: num('msgsPerSec'), mbPerSec: num('mbPerSec'),
      serverCpuSec, msgsPerCpuSec: serverCpuSec > 0 ? num('msgs') / serverCpuSec : 0, clientCpuSec: num('clientCpuSec'),
      p50Ms: latency?.p50Ms ?? null, p99Ms: latency?.p99Ms ?? null,
      correct: r.correct === true, firstError: typeof r.firstError === 'string' ? r.firstError : null,
    },
    perPartition: Array.isArray(r.perPartition) ? (r.perPartition as number[]) : null,
  };
}

/** Set when the last broker start failed with BrokerUnavailableError. */
let brokerUnavailable = false;

async function runCase(kind: TargetKind, c: BenchCase, rep: number, m: MatrixSettings, natsBin: string | null): Promise<RunRecord> {
  const base = { caseId: c.id, target: kind, rep, durability: durabilityOf(kind, c.mode) };
  let target: Target;
  brokerUnavailable = false;
  try {
    target = await startTarget(kind, c, natsBin);
  } catch (err) {
    brokerUnavailable = err instanceof BrokerUnavailableError;
    return { ...base, produce: null, consume: null, error: (err as Error).message };
  }
  try {
    const load = {
      port: target.port, connections: c.connections, inFlight: inFlightPerConnection(c), payloadSize: c.payloadSize,
      partitions: c.partitions, warmupMs: m.warmupMs, measureMs: m.measureMs, drainTimeoutMs: 30000,
      reportPartitions: c.consume,
      ...(kind === TargetKinds.JETSTREAM ? { subjectPrefix: target.topic } : { topic: target.topic }),
    };
    const script = kind === TargetKinds.JETSTREAM ? 'nats-publisher.ts' : 'load-producer.ts';
    const produce = await runGenerator(script, load, target.pid);
    let consume: PhaseFigures | null = null;
    if (c.consume && kind !== TargetKinds.JETSTREAM && produce.figures.correct && produce.perPartition !== null) {
      const opts = { port: target.port, topic: target.topic, group: 'bench-consume', expected: produce.perPartition,
        maxSize: 1024 * 1024, timeoutMs: 120000 };
      consume = (await runGenerator('consume.ts', opts, target.pid)).figures;
    }
    return { ...base, produce: produce.figures, consume, error: null };
  } catch (err) {
    return { ...base, produce: null, consume: null, error: (err as Error).message };
  } finally {
    await target.stop();
    try {
      execFileSync('sync');
    } catch {
      // best effort: settles the page cache between runs
    }
  }
}

function describe(r: RunRecord): string {
  if (r.error !== null) return `ERROR ${r.error}`;
  const f = (p: PhaseFigures | null, name: string): string => (p === null ? '' :
    ` ${name} ${formatRate(p.msgsPerSec)} msg/s ${p.mbPerSec.toFixed(0)} MB/s, ${formatRate(p.msgsPerCpuSec)} msgs/CPU-s` +
    `${p.p50Ms === null ? '' : `, p50 ${p.p50Ms} ms p99 ${p.p99Ms} ms`}${p.correct ? '' : ` INCORRECT: ${p.firstError}`}`);
  return `${f(r.produce, 'produce')}${f(r.consume, '| consume')}`;
}

function gitSha(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      full: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false },
      reps: { type: 'string' }, seconds: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' },
      'no-broker': { type: 'boolean', default: false }, 'no-raw': { type: 'boolean', default: false },
      'no-jetstream': { type: 'boolean', default: false }, 'no-sdk': { type: 'boolean', default: false },
    },
  });
  const base = values.full ? fullMatrix() : quickMatrix();
  const only = values.only?.split(',').filter((s) => s !== '') ?? [];
  const m: MatrixSettings = {
    ...base,
    reps: values.reps !== undefined ? Number(values.reps) : base.reps,
    measureMs: values.seconds !== undefined ? Number(values.seconds) * 1000 : base.measureMs,
    cases: base.cases.filter((c) => only.length === 0 || only.some((o) => c.id.includes(o))),
  };
  const notes: string[] = [];
  if (m.reps === 1) notes.push('quick mode: 1 repetition per figure, so min–max are not shown; use --full for 3');
  const natsBin = values['no-jetstream'] ? null : ensureNatsServer(log);
  if (natsBin === null && !values['no-jetstream']) notes.push('JetStream skipped: nats-server unavailable');
  const kinds = [
    ...(values['no-broker'] ? [] : [TargetKinds.BROKER]),
    ...(values['no-raw'] ? [] : [TargetKinds.RAW]),
    ...(natsBin === null ? [] : [TargetKinds.JETSTREAM]),
  ];
  const plan: Array<{ c: BenchCase; rep: number; kind: TargetKind }> = [];
  for (let rep = 1; rep <= m.reps; rep++) {
    for (const c of m.cases) for (const kind of kinds) if (appliesTo(kind, c)) plan.push({ c, rep, kind });
  }
  log(`metaq bench: ${m.name} mode, ${m.cases.length} cases, ${plan.length} runs, ${m.reps} rep(s), ` +
    `${m.warmupMs / 1000} s warm-up + ${m.measureMs / 1000} s window each`);
  const runs: RunRecord[] = [];
  let brokerFailures = 0;
  let brokerOff: string | null = null;
  for (const [i, { c, rep, kind }] of plan.entries()) {
    if (kind === TargetKinds.BROKER && brokerOff !== null) {
      runs.push({ caseId: c.id, target: kind, rep, durability: durabilityOf(kind, c.mode), produce: null, consume: null, error: brokerOff });
      continue;
    }
    const r = await runCase(kind, c, rep, m, natsBin);
    runs.push(r);
    log(`[${i + 1}/${plan.length}] ${c.id} ${kind} rep ${rep}:${describe(r)}`);
    if (kind === TargetKinds.BROKER) {
      const unavailable = brokerUnavailable;
      brokerFailures = unavailable ? brokerFailures + 1 : 0;
      if (unavailable && (brokerFailures >= 2 || r.error!.includes('does not exist'))) {
        brokerOff = r.error;
        log(`bench: the broker cannot start, skipping it for the rest of the run: ${r.error}`);
        notes.push(`BROKER NOT MEASURED: ${r.error}`);
      }
    }
  }
  const sdkRuns: SdkComparison[] = [];
  if (!values['no-sdk'] && !values['no-broker'] && brokerOff === null) {
    const cases = sdkCases().filter((c) => only.length === 0 || only.some((o) => c.id.includes(o)));
    for (let rep = 1; rep <= m.reps; rep++) {
      for (const c of cases) {
        const r = await compareSdk(c, rep, { warmupMs: m.warmupMs, measureMs: m.measureMs }, runGenerator);
        sdkRuns.push(r);
        const f = (x: PhaseFigures | null): string => (x === null ? '—' : formatRate(x.msgsPerSec));
        log(`[sdk] ${c.id} rep ${rep}: produce raw ${f(r.rawProduce)} send ${f(r.sdkSend)} sendAll ${f(r.sdkSendAll)} | ` +
          `consume raw ${f(r.rawConsume)} sdk ${f(r.sdkConsume)}${r.error === null ? '' : ` ERROR ${r.error}`}`);
      }
    }
  }
  const rows = summarize(m.cases, runs);
  const targets = checkTargets(rows);
  const date = new Date().toISOString();
  const meta: RunMeta = {
    mode: m.name, date, gitSha: gitSha(), node: process.version, nproc: os.availableParallelism(), kernel: os.release(),
    natsServer: natsBin === null ? 'nats-server n/a' : natsServerVersion(natsBin), reps: m.reps, warmupMs: m.warmupMs,
    measureMs: m.measureMs, notes,
  };
  const outDir = values.out ?? path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stem = path.join(outDir, `${date.replace(/[:.]/g, '-')}-${m.name}`);
  const md = `${markdown(meta, rows, targets)}${sdkRuns.length === 0 ? '' : `\n${sdkMarkdown(sdkRuns)}`}`;
  writeFileSync(`${stem}.json`, `${JSON.stringify({ meta, cases: m.cases, runs, summary: rows, targets, sdk: sdkRuns }, null, 2)}\n`);
  writeFileSync(`${stem}.md`, md);
  process.stdout.write(`${md}\nwritten: ${stem}.json, ${stem}.md\n`);
}

main().catch((err: unknown) => {
  log(`bench: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
