/**
 * Put throughput and latency through a master with a slave, sync replication (`system.syncReplication=true`: each
 * put is acknowledged once the master AND the slave stored it) against async replication (the slave pulls), 1 KiB
 * messages by default. Prints figures, asserts nothing.
 *
 *   node --import tsx bench/sync-replication.ts [--seconds 5] [--warmup 1] [--reps 1] [--payload 1024] [--partitions 4]
 *
 * Setup per mode and repetition: a private ZooKeeper (Debian's `zookeeper`), the master and its slave as real broker
 * processes (`metaq server start`, embedded config: group commit, i.e. fdatasync before every ack, on both) in fresh
 * temp dirs, and the pipelined put generator of bench/load-driver.ts in this process. Two loads:
 * - `serial`: 1 connection, 1 put in flight (the latency of one put);
 * - `piped`: 4 connections x 64 puts in flight (throughput).
 * Server CPU is /proc/<pid>/stat of the master and the slave over the measured window. With async replication the
 * slave's lag when the window ends is reported too (bytes the master held that the slave did not).
 */
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeStats } from '../sdk/protocol/encode.js';
import { startCluster, type Cluster, type ClusterBroker } from '../test/harness/cluster.js';
import { RawClient } from '../test/harness/raw-client.js';
import { waitFor } from '../test/harness/wait-for.js';
import { LOAD_DEFAULTS, runLoad, type LoadOptions, type LoadResult } from './load-driver.js';
import { metaqPutProtocol } from './load-producer.js';
import { treeCpuSeconds } from './processes.js';

const Modes = ['sync', 'async'] as const;
type Mode = (typeof Modes)[number];

const Loads = {
  serial: { connections: 1, inFlight: 1 },
  piped: { connections: 4, inFlight: 64 },
} as const;
type LoadName = keyof typeof Loads;

interface Row {
  readonly mode: Mode;
  readonly load: LoadName;
  readonly rep: number;
  readonly result: LoadResult;
  readonly masterCpuSec: number;
  readonly slaveCpuSec: number;
  /** Bytes behind the master when the window ended (async only; sync is 0 by construction). */
  readonly lagBytes: number;
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function statsOf(port: number, item: string): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    const opaque = c.nextOpaque();
    return (await c.request(encodeStats({ item, opaque }), opaque)).body.toString('utf8');
  } finally {
    await c.close();
  }
}

/** `stats offsets` as `<topic>-<partition>` → end offset. */
async function ends(port: number, topic: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await statsOf(port, 'offsets')).split('\r\n')) {
    const m = new RegExp(`^${topic} part (\\d+) min_offset \\d+ max_offset (\\d+)`).exec(line);
    if (m !== null) out.set(`${topic}-${m[1]}`, Number(m[2]));
  }
  return out;
}

async function lagBytes(master: ClusterBroker, slave: ClusterBroker, topic: string): Promise<number> {
  const [m, s] = await Promise.all([ends(master.port, topic), ends(slave.port, topic)]);
  let lag = 0;
  for (const [k, end] of m) lag += Math.max(0, end - (s.get(k) ?? 0));
  return lag;
}

async function runOne(mode: Mode, load: LoadName, rep: number, o: { seconds: number; warmup: number; payload: number;
  partitions: number }): Promise<Row> {
  const cluster: Cluster = await startCluster({ brokers: 0, spawn: true, numPartitions: o.partitions,
    set: { 'system.brokerId': '0' } });
  try {
    const master = await cluster.addBroker(mode === 'sync' ? { 'system.syncReplication': 'true' } : {});
    const slave = await cluster.addBroker({ 'system.slaveId': '1' });
    const topic = `bench-sync-${load}`;
    if (mode === 'sync') {
      await waitFor(async () => (await statsOf(master.port, 'replication')).includes(`sync_slave ${slave.url}\r\n`),
        { timeoutMs: 30_000, what: 'the master to find its slave' });
    } else {
      await waitFor(async () => /master_connected true/.test(await statsOf(slave.port, 'replication')),
        { timeoutMs: 30_000, what: 'the slave to connect' });
    }
    const opts: LoadOptions & { topic: string } = { ...LOAD_DEFAULTS, ...Loads[load], port: master.port, topic,
      payloadSize: o.payload, partitions: o.partitions, warmupMs: o.warmup * 1000, measureMs: o.seconds * 1000 };
    const mPid = master.pid!;
    const sPid = slave.pid!;
    let cpu0 = [0, 0];
    let cpu1 = [0, 0];
    let lagAtEnd: Promise<number> = Promise.resolve(0);
    const result = await runLoad(opts, metaqPutProtocol(opts), (e) => {
      const event = (e as { event?: string }).event;
      if (event === 'window-start') cpu0 = [treeCpuSeconds(mPid), treeCpuSeconds(sPid)];
      if (event === 'window-end') {
        cpu1 = [treeCpuSeconds(mPid), treeCpuSeconds(sPid)];
        if (mode === 'async') lagAtEnd = lagBytes(master, slave, topic).catch(() => -1);
      }
    });
    const lag = await lagAtEnd;
    // Let the slave finish, so that the next run does not share the CPU with its catch-up.
    await waitFor(async () => (await lagBytes(master, slave, topic)) === 0, { timeoutMs: 60_000, what: 'the slave to catch up' })
      .catch(() => log('  (the slave did not catch up within 60 s)'));
    return { mode, load, rep, result, masterCpuSec: cpu1[0]! - cpu0[0]!, slaveCpuSec: cpu1[1]! - cpu0[1]!, lagBytes: lag };
  } finally {
    await cluster.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor((s.length - 1) / 2)]!;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    seconds: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' }, reps: { type: 'string', default: '1' },
    payload: { type: 'string', default: '1024' }, partitions: { type: 'string', default: '4' },
  } });
  const o = { seconds: Number(values.seconds), warmup: Number(values.warmup), payload: Number(values.payload),
    partitions: Number(values.partitions) };
  const reps = Number(values.reps);
  const rows: Row[] = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const load of Object.keys(Loads) as LoadName[]) {
      // Interleaved, so that drift of the machine hits both modes alike.
      for (const mode of Modes) {
        log(`${mode} ${load} rep ${rep + 1}/${reps} ...`);
        const row = await runOne(mode, load, rep, o);
        const r = row.result;
        log(`  ${fmt(r.msgsPerSec)} msg/s, p50 ${fmt(r.latency.p50Ms, 2)} ms, p99 ${fmt(r.latency.p99Ms, 2)} ms, ` +
          `correct ${r.correct}${r.firstError === null ? '' : ` (${r.firstError})`}`);
        rows.push(row);
        await delay(200);
      }
    }
  }
  const header = `| load | replication | msg/s | MB/s | p50 ms | p99 ms | p99.9 ms | master CPU s | slave CPU s | msgs per master CPU-s | slave lag at end | correct |`;
  const lines = [
    `sync vs async replication: ${o.payload} B puts, ${o.partitions} partitions, ${o.warmup} s warm-up + ${o.seconds} s window, ` +
      `${reps} rep(s) (medians); master and slave are separate broker processes, group commit (fdatasync per ack) on both`,
    '',
    header,
    `|${header.split('|').slice(1, -1).map(() => '---').join('|')}|`,
  ];
  for (const load of Object.keys(Loads) as LoadName[]) {
    for (const mode of Modes) {
      const rs = rows.filter((r) => r.load === load && r.mode === mode);
      const m = (f: (r: Row) => number): number => median(rs.map(f));
      const l = Loads[load];
      lines.push(`| ${load} (${l.connections}x${l.inFlight}) | ${mode} | ${fmt(m((r) => r.result.msgsPerSec))} | ` +
        `${fmt(m((r) => r.result.mbPerSec), 1)} | ${fmt(m((r) => r.result.latency.p50Ms), 2)} | ` +
        `${fmt(m((r) => r.result.latency.p99Ms), 2)} | ${fmt(m((r) => r.result.latency.p999Ms), 2)} | ` +
        `${fmt(m((r) => r.masterCpuSec), 2)} | ${fmt(m((r) => r.slaveCpuSec), 2)} | ` +
        `${fmt(m((r) => r.masterCpuSec > 0 ? r.result.msgs / r.masterCpuSec : 0))} | ` +
        `${mode === 'sync' ? '-' : `${fmt(m((r) => r.lagBytes))} B`} | ${rs.every((r) => r.result.correct)} |`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  log(`sync-replication bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
