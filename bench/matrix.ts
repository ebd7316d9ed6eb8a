/**
 * The benchmark matrix: which cases run in quick and full mode, and how each is labelled. The quick matrix
 * keeps `npm run bench` under 5 minutes (one repetition, 1 s warm-up, 3 s window); the full one is the
 * sweep of DESIGN.md §11 with 3 repetitions.
 */

export const FlushModes = {
  GROUP: 'group',
  INTERVAL: 'interval',
} as const;
export type FlushMode = (typeof FlushModes)[keyof typeof FlushModes];

/** Interval-flush settings used for both the broker and the raw sink, so that they compare like with like. */
export const INTERVAL_FLUSH = { unflushThreshold: 100000, unflushIntervalMs: 1000 } as const;

export const TargetKinds = {
  BROKER: 'broker',
  RAW: 'raw-sink',
  JETSTREAM: 'jetstream',
} as const;
export type TargetKind = (typeof TargetKinds)[keyof typeof TargetKinds];

export interface BenchCase {
  readonly id: string;
  readonly payloadSize: number;
  readonly mode: FlushMode;
  readonly partitions: number;
  readonly connections: number;
  /** Run a consume catch-up over the produced data afterwards. */
  readonly consume: boolean;
}

export interface MatrixSettings {
  readonly name: 'quick' | 'full';
  readonly reps: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly cases: readonly BenchCase[];
}

/** The durability mode of a figure, as DESIGN.md §11 asks to state beside each one. */
export function durabilityOf(kind: TargetKind, mode: FlushMode): string {
  if (kind === TargetKinds.JETSTREAM) return 'page-cache (JetStream sync_interval default)';
  if (mode === FlushModes.GROUP) return 'group-fsync (fdatasync before ack)';
  return `page-cache (interval flush: fsync every ${INTERVAL_FLUSH.unflushIntervalMs} ms or ${INTERVAL_FLUSH.unflushThreshold} msgs)`;
}

/** JetStream runs only where the issue compares against it: 100 B and 1 KiB produce. */
export function appliesTo(kind: TargetKind, c: BenchCase): boolean {
  return kind !== TargetKinds.JETSTREAM || c.payloadSize <= 1024;
}

/** Total frames in flight per run (all connections), capped at 64 MiB of payload. */
export function inFlightPerConnection(c: BenchCase): number {
  const total = Math.min(8192, Math.floor((64 * 1024 * 1024) / c.payloadSize));
  return Math.max(16, Math.ceil(total / c.connections));
}

function sizeLabel(size: number): string {
  return size >= 1024 ? `${size / 1024}k` : `${size}b`;
}

export function makeCase(payloadSize: number, mode: FlushMode, partitions: number, connections: number, consume = false): BenchCase {
  return {
    id: `produce-${sizeLabel(payloadSize)}-${mode}-${partitions}p-${connections}c`,
    payloadSize, mode, partitions, connections, consume,
  };
}

const { GROUP, INTERVAL } = FlushModes;

export function quickMatrix(): MatrixSettings {
  return {
    name: 'quick', reps: 1, warmupMs: 1000, measureMs: 3000,
    cases: [
      makeCase(1024, GROUP, 8, 16, true),
      makeCase(1024, INTERVAL, 8, 16),
      makeCase(100, INTERVAL, 8, 16),
      makeCase(100, GROUP, 8, 16),
      makeCase(16384, GROUP, 8, 16),
      makeCase(1024, GROUP, 1, 16),
      makeCase(1024, GROUP, 64, 16),
      makeCase(1024, GROUP, 1000, 16),
      makeCase(1024, GROUP, 8, 1),
      makeCase(1024, GROUP, 8, 64),
    ],
  };
}

export function fullMatrix(): MatrixSettings {
  const cases: BenchCase[] = [];
  for (const size of [100, 1024, 16384]) {
    for (const mode of [GROUP, INTERVAL]) cases.push(makeCase(size, mode, 8, 16, size === 1024));
  }
  for (const partitions of [1, 64, 1000]) {
    for (const mode of [GROUP, INTERVAL]) cases.push(makeCase(1024, mode, partitions, 16));
  }
  for (const connections of [1, 4, 64]) cases.push(makeCase(1024, GROUP, 8, connections));
  cases.push(makeCase(100, INTERVAL, 64, 16));
  return { name: 'full', reps: 3, warmupMs: 2000, measureMs: 8000, cases };
}
