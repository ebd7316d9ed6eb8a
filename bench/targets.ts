/**
 * The three servers a case runs against, each started fresh in its own temp dir on a free loopback port:
 * the broker (`node bin/metaq.js server start -c <server.ini>`), the raw sink, and JetStream.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlushModes, INTERVAL_FLUSH, TargetKinds, type BenchCase, type TargetKind } from './matrix.js';
import { createStream, startNatsServer } from './nats-peer.js';
import {
  collectEvents, freePort, listenerPid, removeTempDir, spawnTracked, stopPid, trackPid, trackTempDir, waitFor,
} from './processes.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSX = ['--import', 'tsx'];

export interface Target {
  readonly kind: TargetKind;
  /** The server process whose CPU time is reported. */
  readonly pid: number;
  readonly port: number;
  /** Topic for MetaQ targets, subject prefix for JetStream. */
  readonly topic: string;
  stop(): Promise<void>;
}

/** Thrown when the broker cannot be started; the runner reports it and carries on with the others. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}

export async function startTarget(kind: TargetKind, c: BenchCase, natsBin: string | null): Promise<Target> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `metaq-bench-${kind}-`));
  trackTempDir(dir);
  try {
    const t = kind === TargetKinds.BROKER ? await startBroker(c, dir)
      : kind === TargetKinds.RAW ? await startRawSink(c, dir)
        : await startJetStream(natsBin, dir);
    return { ...t, stop: async () => {
      await t.stop();
      removeTempDir(dir);
    } };
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}

/** The broker's server.ini for a case: MetaQ's keys, ZooKeeper off, one topic. */
export function brokerIni(c: BenchCase, dataPath: string, port: number, httpPort: number, topic: string): string {
  const threshold = c.mode === FlushModes.GROUP ? 0 : INTERVAL_FLUSH.unflushThreshold;
  return [
    '[system]',
    'brokerId=0',
    `serverPort=${port}`,
    `dashboardHttpPort=${httpPort}`,
    `dataPath=${dataPath}`,
    `numPartitions=${c.partitions}`,
    `unflushThreshold=${threshold}`,
    `unflushInterval=${INTERVAL_FLUSH.unflushIntervalMs}`,
    'maxSegmentSize=1073741824',
    'maxTransferSize=1048576',
    '',
    '[zookeeper]',
    'zk.zkEnable=false',
    '',
    `[topic=${topic}]`,
    `numPartitions=${c.partitions}`,
    `unflushThreshold=${threshold}`,
    `unflushInterval=${INTERVAL_FLUSH.unflushIntervalMs}`,
    '',
  ].join('\n');
}

async function startBroker(c: BenchCase, dir: string): Promise<Omit<Target, 'kind'> & { kind: TargetKind }> {
  const bin = path.join(REPO_ROOT, 'bin', 'metaq.js');
  if (!existsSync(bin)) throw new BrokerUnavailableError(`broker unavailable: ${bin} does not exist yet`);
  const [port, httpPort] = [await freePort(), await freePort()];
  const topic = 'bench-topic';
  const ini = path.join(dir, 'server.ini');
  writeFileSync(ini, brokerIni(c, path.join(dir, 'data'), port, httpPort, topic));
  const logFile = path.join(dir, 'broker.log');
  const child = spawnTracked(process.execPath, [bin, 'server', 'start', '-c', ini, '--log-file', logFile], { cwd: REPO_ROOT });
  let exit: { code: number | null; stderr: string } | null = null;
  const exited = collectEvents(child, () => undefined).then((r) => {
    exit = r;
    return r;
  });
  let up = false;
  await waitFor(async () => {
    up = await answersVersion(port);
    return up || (exit !== null && exit.code !== 0);
  }, 30000);
  if (!up) {
    if (child.pid !== undefined) await stopPid(child.pid);
    const r = await exited;
    throw new BrokerUnavailableError(`broker did not start (node bin/metaq.js server start -c ${ini}; exit ${r.code}): ` +
      `${r.stderr}\n${readTail(logFile)}`.trim().split('\n').slice(-8).join(' | '));
  }
  // `server start` may daemonize: then the process that owns the port is the broker.
  let pid = child.pid ?? -1;
  if (exit !== null) {
    pid = listenerPid(port) ?? -1;
    if (pid < 0) throw new BrokerUnavailableError(`broker answers on ${port} but its pid was not found`);
    trackPid(pid);
  }
  return { kind: TargetKinds.BROKER, pid, port, topic, stop: () => stopPid(pid, 10000) };
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-2000);
  } catch {
    return '';
  }
}

/** True if `version` on `port` gets a `result 200`. */
function answersVersion(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let acc = '';
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('version 1\r\n'));
    s.on('data', (d: Buffer) => {
      acc += d.toString('latin1');
      if (acc.includes('\r\n')) {
        s.destroy();
        resolve(acc.startsWith('result 200'));
      }
    });
  });
}

async function startRawSink(c: BenchCase, dir: string): Promise<Target> {
  const opts = { dataDir: path.join(dir, 'data'), mode: c.mode, intervalMs: INTERVAL_FLUSH.unflushIntervalMs, port: 0 };
  const child = spawnTracked(process.execPath, [...TSX, path.join(REPO_ROOT, 'bench', 'raw-sink.ts'), JSON.stringify(opts)], {
    cwd: REPO_ROOT, env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
  });
  let port = 0;
  const exited = collectEvents(child, (e) => {
    if (e.event === 'listening' && typeof e.port === 'number') port = e.port;
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  if (!(await waitFor(async () => port > 0 || gone, 20000)) || port === 0) {
    if (child.pid !== undefined) await stopPid(child.pid);
    throw new Error(`raw sink did not start: ${(await exited).stderr.slice(-500)}`);
  }
  const pid = child.pid ?? -1;
  return { kind: TargetKinds.RAW, pid, port, topic: 'bench-topic', stop: () => stopPid(pid) };
}

async function startJetStream(natsBin: string | null, dir: string): Promise<Target> {
  if (natsBin === null) throw new Error('nats-server unavailable');
  const port = await freePort();
  const server = await startNatsServer(natsBin, dir, port);
  try {
    await createStream(port, 'bench', ['bench.>']);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { kind: TargetKinds.JETSTREAM, pid: server.pid, port, topic: 'bench', stop: () => server.stop() };
}
