/**
 * Aggregation and output of a benchmark run: medians with min–max over repetitions, per-repetition ratios
 * (broker / raw sink, broker / JetStream; their median is reported), the targets as figures (never
 * asserted), and the markdown table.
 */
import { TargetKinds, type BenchCase, type TargetKind } from './matrix.js';

export type Phase = 'produce' | 'consume';

export interface PhaseFigures {
  readonly msgs: number;
  readonly seconds: number;
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
  readonly serverCpuSec: number;
  /** Messages per CPU-second of the server process (all its threads). */
  readonly msgsPerCpuSec: number;
  readonly clientCpuSec: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly correct: boolean;
  readonly firstError: string | null;
}

export interface RunRecord {
  readonly caseId: string;
  readonly target: TargetKind;
  readonly rep: number;
  readonly durability: string;
  readonly produce: PhaseFigures | null;
  readonly consume: PhaseFigures | null;
  /** Why the run produced no figures (server did not start, load generator failed). */
  readonly error: string | null;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface SummaryRow {
  readonly caseId: string;
  readonly phase: Phase;
  readonly target: TargetKind;
  readonly durability: string;
  readonly runs: number;
  readonly msgsPerSec: Spread | null;
  readonly mbPerSec: Spread | null;
  readonly msgsPerCpuSec: Spread | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Median over repetitions of this target's rate / the raw sink's rate in the same repetition. */
  readonly ratioToRaw: number | null;
  readonly ratioToJetStream: number | null;
  /** (max − min) / median above 15%. */
  readonly noisy: boolean;
  readonly correct: boolean;
  readonly error: string | null;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function spread(xs: readonly number[]): Spread | null {
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

function ratioOf(runs: readonly RunRecord[], caseId: string, phase: Phase, target: TargetKind, other: TargetKind): number | null {
  const ratios: number[] = [];
  for (const r of runs) {
    if (r.caseId !== caseId || r.target !== target) continue;
    const mine = r[phase];
    const peer = runs.find((o) => o.caseId === caseId && o.target === other && o.rep === r.rep)?.[phase];
    if (mine?.correct && peer?.correct && peer.msgsPerSec > 0) ratios.push(mine.msgsPerSec / peer.msgsPerSec);
  }
  return ratios.length === 0 ? null : median(ratios);
}

export function summarize(cases: readonly BenchCase[], runs: readonly RunRecord[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const c of cases) {
    for (const phase of ['produce', 'consume'] as const) {
      if (phase === 'consume' && !c.consume) continue;
      for (const target of Object.values(TargetKinds)) {
        const mine = runs.filter((r) => r.caseId === c.id && r.target === target);
        if (mine.length === 0) continue;
        if (phase === 'consume' && target === TargetKinds.JETSTREAM) continue;
        const figs = mine.map((r) => r[phase]).filter((f): f is PhaseFigures => f !== null && f.correct);
        const rate = spread(figs.map((f) => f.msgsPerSec));
        const bad = mine.find((r) => r.error !== null || (r[phase] !== null && !r[phase].correct));
        rows.push({
          caseId: c.id, phase, target, durability: mine[0]!.durability, runs: figs.length,
          msgsPerSec: rate,
          mbPerSec: spread(figs.map((f) => f.mbPerSec)),
          msgsPerCpuSec: spread(figs.map((f) => f.msgsPerCpuSec)),
          p50Ms: figs.some((f) => f.p50Ms !== null) ? median(figs.map((f) => f.p50Ms ?? 0)) : null,
          p99Ms: figs.some((f) => f.p99Ms !== null) ? median(figs.map((f) => f.p99Ms ?? 0)) : null,
          ratioToRaw: target === TargetKinds.RAW ? null : ratioOf(runs, c.id, phase, target, TargetKinds.RAW),
          ratioToJetStream: target === TargetKinds.BROKER ? ratioOf(runs, c.id, phase, target, TargetKinds.JETSTREAM) : null,
          noisy: rate !== null && rate.median > 0 && (rate.max - rate.min) / rate.median > 0.15,
          correct: bad === undefined,
          error: bad?.error ?? bad?.[phase]?.firstError ?? null,
        });
      }
    }
  }
  return rows;
}

export interface TargetCheck {
  readonly what: string;
  readonly goal: string;
  readonly value: string;
  readonly met: boolean | null;
}

function rateOf(rows: readonly SummaryRow[], caseId: string, target: TargetKind, phase: Phase = 'produce'): SummaryRow | undefined {
  return rows.find((r) => r.caseId === caseId && r.target === target && r.phase === phase && r.msgsPerSec !== null);
}

/** The targets, computed from the broker rows when they exist (figures to report, not asserted). */
export function checkTargets(rows: readonly SummaryRow[]): TargetCheck[] {
  const b = TargetKinds.BROKER;
  const fmt = (x: number | undefined, unit: string): string => (x === undefined ? 'n/a' : `${formatRate(x)}${unit}`);
  const out: TargetCheck[] = [];
  const g8 = rateOf(rows, 'produce-1k-group-8p-16c', b);
  const g8v = g8?.msgsPerSec?.median;
  out.push({ what: '1 KiB group commit, 8 partitions', goal: '>= 350k msg/s', value: fmt(g8v, ' msg/s'),
    met: g8v === undefined ? null : g8v >= 350_000 });
  const js = g8?.ratioToJetStream ?? undefined;
  out.push({ what: '... vs JetStream same run', goal: '>= 2x', value: js === undefined ? 'n/a' : `${js.toFixed(2)}x`,
    met: js === undefined ? null : js >= 2 });
  const i100 = rateOf(rows, 'produce-100b-interval-8p-16c', b)?.msgsPerSec?.median;
  out.push({ what: '100 B interval flush, 8 partitions', goal: '>= 1M msg/s', value: fmt(i100, ' msg/s'),
    met: i100 === undefined ? null : i100 >= 1_000_000 });
  for (const [parts, goal] of [[64, 0.75], [1000, 0.5]] as const) {
    const v = rateOf(rows, `produce-1k-group-${parts}p-16c`, b)?.msgsPerSec?.median;
    const share = v === undefined || g8v === undefined ? undefined : v / g8v;
    out.push({ what: `1 KiB group commit, ${parts} partitions vs 8`, goal: `>= ${goal * 100}%`,
      value: share === undefined ? 'n/a' : `${(share * 100).toFixed(0)}%`, met: share === undefined ? null : share >= goal });
  }
  const cons = rows.find((r) => r.phase === 'consume' && r.target === b && r.mbPerSec !== null)?.mbPerSec?.median;
  out.push({ what: 'consume catch-up', goal: '>= 500 MB/s', value: cons === undefined ? 'n/a' : `${cons.toFixed(0)} MB/s`,
    met: cons === undefined ? null : cons >= 500 });
  return out;
}

export function formatRate(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}

function fmtSpread(s: Spread | null, f: (x: number) => string): string {
  if (s === null) return '—';
  return s.min === s.max ? f(s.median) : `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
}

export interface RunMeta {
  readonly mode: 'quick' | 'full';
  readonly date: string;
  readonly gitSha: string;
  readonly node: string;
  readonly nproc: number;
  readonly kernel: string;
  readonly natsServer: string;
  readonly reps: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly notes: readonly string[];
}

export function markdown(meta: RunMeta, rows: readonly SummaryRow[], targets: readonly TargetCheck[]): string {
  const lines = [
    `# metaq bench (${meta.mode}) ${meta.date}`,
    '',
    `git ${meta.gitSha} · node ${meta.node} · nproc ${meta.nproc} · kernel ${meta.kernel} · ${meta.natsServer} · ` +
    `${meta.reps} rep(s), ${meta.warmupMs / 1000} s warm-up, ${meta.measureMs / 1000} s window`,
    '',
    ...meta.notes.map((n) => `- ${n}`),
    '',
    '| case | phase | target | durability | msg/s median [min–max] | MB/s | msgs/server-CPU-s | p50/p99 ms | ÷ raw | ÷ JetStream | ok |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const lat = r.p50Ms === null ? '—' : `${r.p50Ms.toFixed(1)}/${(r.p99Ms ?? 0).toFixed(1)}`;
    const ok = r.correct ? (r.noisy ? 'ok (noisy >15%)' : 'ok') : `FAIL: ${(r.error ?? '').replace(/\|/g, '/').slice(0, 120)}`;
    lines.push(`| ${r.caseId} | ${r.phase} | ${r.target} | ${r.durability} | ${fmtSpread(r.msgsPerSec, formatRate)} | ` +
      `${fmtSpread(r.mbPerSec, (x) => x.toFixed(0))} | ${fmtSpread(r.msgsPerCpuSec, formatRate)} | ${lat} | ` +
      `${r.ratioToRaw === null ? '—' : r.ratioToRaw.toFixed(2)} | ${r.ratioToJetStream === null ? '—' : r.ratioToJetStream.toFixed(2)} | ${ok} |`);
  }
  lines.push('', '## Targets (reported, not asserted)', '', '| what | goal | value | met |', '|---|---|---|---|');
  for (const t of targets) lines.push(`| ${t.what} | ${t.goal} | ${t.value} | ${t.met === null ? 'n/a' : t.met ? 'yes' : 'no'} |`);
  lines.push('');
  return lines.join('\n');
}
