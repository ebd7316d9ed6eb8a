/**
 * SDK against the raw protocol client, on the same broker in the same run: produce with one connection and the same
 * depth (bench/load-producer.ts with pre-encoded frames vs bench/sdk-producer.ts through `producer.send` and
 * through the `sendAll` operator), then consume the raw producer's data (bench/consume.ts checking every CRC vs
 * bench/sdk-consumer.ts, every delivery acked). Each ratio is SDK ÷ raw of the same repetition.
 */
import { FlushModes, durabilityOf, TargetKinds, type BenchCase, type FlushMode } from './matrix.js';
import { formatRate, type PhaseFigures } from './report.js';
import { startTarget } from './targets.js';

export type RunGenerator = (script: string, opts: object, serverPid: number) =>
Promise<{ figures: PhaseFigures; perPartition: number[] | null }>;

/** Depth of the pipelines on both sides. */
const IN_FLIGHT = 8192;

export interface SdkComparison {
  readonly caseId: string;
  readonly durability: string;
  readonly rep: number;
  readonly rawProduce: PhaseFigures | null;
  readonly sdkSend: PhaseFigures | null;
  readonly sdkSendAll: PhaseFigures | null;
  readonly rawConsume: PhaseFigures | null;
  readonly sdkConsume: PhaseFigures | null;
  readonly error: string | null;
}

function sdkCase(payloadSize: number, mode: FlushMode, partitions: number): BenchCase {
  const size = payloadSize >= 1024 ? `${payloadSize / 1024}k` : `${payloadSize}b`;
  return { id: `sdk-${size}-${mode}-${partitions}p-1c`, payloadSize, mode, partitions, connections: 1, consume: true };
}

/** The SDK cases: 1 KiB with group commit and 100 B with interval flush, 4 partitions, one connection. */
export function sdkCases(): BenchCase[] {
  return [sdkCase(1024, FlushModes.GROUP, 4), sdkCase(100, FlushModes.INTERVAL, 4)];
}

/** One repetition of one case: raw and SDK produce on fresh brokers, then both consumers over the raw data. */
export async function compareSdk(c: BenchCase, rep: number, window: { warmupMs: number; measureMs: number },
  run: RunGenerator): Promise<SdkComparison> {
  const base = { caseId: c.id, durability: durabilityOf(TargetKinds.BROKER, c.mode), rep };
  const produceOpts = { connections: 1, inFlight: IN_FLIGHT, payloadSize: c.payloadSize, partitions: c.partitions,
    ...window, drainTimeoutMs: 30000 };
  let rawProduce: PhaseFigures | null = null;
  let rawConsume: PhaseFigures | null = null;
  let sdkConsume: PhaseFigures | null = null;
  const sdk: Record<'send' | 'sendAll', PhaseFigures | null> = { send: null, sendAll: null };
  try {
    const raw = await startTarget(TargetKinds.BROKER, c, null);
    try {
      const p = await run('load-producer.ts', { ...produceOpts, port: raw.port, topic: raw.topic, reportPartitions: true }, raw.pid);
      rawProduce = p.figures;
      if (p.perPartition !== null && p.figures.correct) {
        const consume = { port: raw.port, topic: raw.topic, expected: p.perPartition, maxSize: 1024 * 1024, timeoutMs: 120000 };
        // Like for like: the raw client checks every record's CRC, as the SDK must.
        rawConsume = (await run('consume.ts', { ...consume, group: 'bench-raw', crcEvery: 1 }, raw.pid)).figures;
        sdkConsume = (await run('sdk-consumer.ts', { ...consume, group: 'bench-sdk' }, raw.pid)).figures;
      }
    } finally {
      await raw.stop();
    }
    for (const mode of ['send', 'sendAll'] as const) {
      const t = await startTarget(TargetKinds.BROKER, c, null);
      try {
        sdk[mode] = (await run('sdk-producer.ts', { ...produceOpts, mode, port: t.port, topic: t.topic }, t.pid)).figures;
      } finally {
        await t.stop();
      }
    }
    return { ...base, rawProduce, sdkSend: sdk.send, sdkSendAll: sdk.sendAll, rawConsume, sdkConsume, error: null };
  } catch (err) {
    return { ...base, rawProduce, sdkSend: sdk.send, sdkSendAll: sdk.sendAll, rawConsume, sdkConsume,
      error: (err as Error).message };
  }
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

const rate = (f: PhaseFigures | null): number | null => (f !== null && f.correct ? f.msgsPerSec : null);

/** Markdown table of the comparisons: medians over repetitions and the median of per-repetition ratios. */
export function sdkMarkdown(rows: readonly SdkComparison[]): string {
  const lines = [
    '## SDK vs raw protocol client (same broker, same run, one connection each; the raw consumer checks every CRC as the SDK does; target ≥ 0.80)',
    '',
    '| case | durability | phase | raw msg/s | SDK msg/s | SDK ÷ raw | SDK client CPU-s |',
    '|---|---|---|---|---|---|---|',
  ];
  const ids = [...new Set(rows.map((r) => r.caseId))];
  const phases: Array<[string, (r: SdkComparison) => PhaseFigures | null, (r: SdkComparison) => PhaseFigures | null]> = [
    ['produce: send', (r) => r.rawProduce, (r) => r.sdkSend],
    ['produce: sendAll', (r) => r.rawProduce, (r) => r.sdkSendAll],
    ['consume: messages$', (r) => r.rawConsume, (r) => r.sdkConsume],
  ];
  for (const id of ids) {
    const reps = rows.filter((r) => r.caseId === id);
    for (const [phase, rawOf, sdkOf] of phases) {
      const raws = reps.map((r) => rate(rawOf(r))).filter((x): x is number => x !== null);
      const sdks = reps.map((r) => rate(sdkOf(r))).filter((x): x is number => x !== null);
      const ratios = reps.map((r) => {
        const a = rate(rawOf(r));
        const b = rate(sdkOf(r));
        return a !== null && b !== null && a > 0 ? b / a : null;
      }).filter((x): x is number => x !== null);
      const ratio = median(ratios);
      const cpu = median(reps.map((r) => sdkOf(r)?.clientCpuSec ?? NaN).filter((x) => !Number.isNaN(x)));
      const fmt = (x: number | null): string => (x === null ? '—' : formatRate(x));
      lines.push(`| ${id} | ${reps[0]!.durability} | ${phase} | ${fmt(median(raws))} | ${fmt(median(sdks))} | ` +
        `${ratio === null ? '—' : ratio.toFixed(2)} | ${cpu === null ? '—' : cpu.toFixed(2)} |`);
    }
    for (const r of reps) if (r.error !== null) lines.push(`| ${id} | | error (rep ${r.rep}) | ${r.error.replace(/\|/g, '/').slice(0, 120)} | | | |`);
  }
  return `${lines.join('\n')}\n`;
}
