/**
 * A real broker process for process-level tests (kill -9, fuzzing): `node bin/metaq.js server start` as a child,
 * signalled by pid. Every spawned broker is registered so that {@link killSpawnedBrokers} (call it in `after`) and
 * this process's own exit or termination SIGKILL whatever is still running: a failed test never leaves a broker
 * behind.
 *
 * The child shares the test's process group (a Ctrl-C in a terminal stops both). Its stdout and stderr (pino JSON
 * lines) are kept in memory, bounded: the head (startup and recovery lines) and the most recent tail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { METAQ_BIN } from '../../broker/cli/run-cli.js';
import { freePort } from './free-port.js';
import { RawClient } from './raw-client.js';
import { waitFor } from './wait-for.js';

export interface SpawnBrokerOptions {
  readonly dataDir: string;
  /** Default 0: the broker picks a free port, read from its "metaq server ready" log line. */
  readonly port?: number;
  /** `--set section.key=value` overrides, e.g. `{ 'system.longPollTimeoutMs': '0' }`. */
  readonly set?: Readonly<Record<string, string>>;
  /** A server.ini (`-c`); default: the embedded standalone configuration. */
  readonly configFile?: string;
  /** Default 'info'. */
  readonly logLevel?: string;
  /** How long to wait for the broker to answer `version`. Default 30 s (recovery may scan a lot). */
  readonly startTimeoutMs?: number;
  /** Bytes of output kept from the start and from the end each. Default 1 MiB. */
  readonly logKeepBytes?: number;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface BrokerProcess {
  readonly pid: number;
  readonly port: number;
  readonly dataDir: string;
  /** Milliseconds from spawn until the broker answered `version` (includes recovery). */
  readonly startMs: number;
  /** Captured stdout + stderr (bounded: head and tail, with a marker where bytes were dropped). */
  logs(): string;
  /** The captured output's JSON lines whose `msg` equals `msg` (all JSON lines when omitted). */
  logRecords(msg?: string): Record<string, unknown>[];
  alive(): boolean;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM (graceful stop), then waits for the exit; SIGKILL and reject after `timeoutMs` (default 20 s). */
  stop(timeoutMs?: number): Promise<ExitStatus>;
  readonly exited: Promise<ExitStatus>;
  /** Resident set size from /proc/<pid>/status, in bytes. */
  rssBytes(): Promise<number>;
  /** Open file descriptors of the broker, from /proc/<pid>/fd. */
  openFds(): Promise<{ total: number; sockets: number }>;
}

const live = new Map<number, ChildProcess>();
let hooksInstalled = false;

/** SIGKILLs every broker this process spawned that is still running and waits for them to exit. */
export async function killSpawnedBrokers(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live.values()) {
    if (child.exitCode === null && child.signalCode === null) {
      waits.push(new Promise((r) => child.once('exit', r)));
      child.kill('SIGKILL');
    }
  }
  await Promise.all(waits);
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAllNow = (): void => {
    for (const child of live.values()) {
      try { child.kill('SIGKILL'); } catch { /* already gone */ }
    }
  };
  process.once('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllNow();
      // Re-raise with the default disposition so the runner sees the usual exit.
      process.kill(process.pid, signal);
    });
  }
}

/** Starts a broker process and resolves once it answers `version`; rejects (having killed it) otherwise. */
export async function spawnBroker(options: SpawnBrokerOptions): Promise<BrokerProcess> {
  installHooks();
  const logLevel = options.logLevel ?? 'info';
  // Port 0 is race-free but the chosen port is only known from the info-level "ready" line.
  const requestedPort = options.port ?? (['info', 'debug', 'trace'].includes(logLevel) ? 0 : await freePort());
  const args = [METAQ_BIN, 'server', 'start', '--data-path', options.dataDir, '--port', String(requestedPort),
    '--log-level', logLevel, '--set', 'system.dashboardHttpPort=0'];
  if (options.configFile !== undefined) args.push('-c', options.configFile);
  for (const [key, value] of Object.entries(options.set ?? {})) args.push('--set', `${key}=${value}`);

  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${process.execPath} ${args.join(' ')}`);
  const pid = child.pid;
  live.set(pid, child);
  const output = new BoundedLog(options.logKeepBytes ?? 1024 * 1024);
  child.stdout!.on('data', (b: Buffer) => output.add(b));
  child.stderr!.on('data', (b: Buffer) => output.add(b));
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      live.delete(pid);
      resolve(status);
    });
  });

  const timeoutMs = options.startTimeoutMs ?? 30_000;
  let port = requestedPort;
  try {
    await waitFor(async () => {
      if (status !== undefined) return true;
      if (port === 0) port = readyPort(output.text()) ?? 0;
      return port !== 0 && await answersVersion(port);
    }, { timeoutMs, intervalMs: 10, what: `broker pid ${pid} to answer version` });
    if (status !== undefined) throw new Error(`broker exited during start (${describe(status)})`);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${(e as Error).message}; output:\n${output.text().slice(-4000)}`, { cause: e });
  }
  const startMs = performance.now() - t0;

  return {
    pid, port, dataDir: options.dataDir, startMs, exited,
    logs: () => output.text(),
    logRecords: (msg) => parseLogLines(output.text(), msg),
    alive: () => status === undefined,
    kill: (signal) => { if (status === undefined) child.kill(signal); },
    stop: async (stopTimeoutMs = 20_000) => {
      if (status !== undefined) return status;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), stopTimeoutMs); });
      const r = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (r === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`broker pid ${pid} did not stop within ${stopTimeoutMs} ms of SIGTERM; killed`);
      }
      return r;
    },
    rssBytes: () => rssOf(pid),
    openFds: () => fdsOf(pid),
  };
}

function describe(s: ExitStatus): string {
  return s.signal !== null ? `signal ${s.signal}` : `code ${s.code}`;
}

function readyPort(text: string): number | undefined {
  for (const r of parseLogLines(text, 'metaq server ready')) {
    if (typeof r['port'] === 'number' && r['port'] > 0) return r['port'];
  }
  return undefined;
}

async function answersVersion(port: number): Promise<boolean> {
  let client: RawClient | undefined;
  try {
    client = await RawClient.connect(port);
    const opaque = client.nextOpaque();
    const r = await client.request(`version ${opaque}\r\n`, opaque, 2000);
    return r.type === 'result' && r.code === 200;
  } catch {
    return false;
  } finally {
    client?.socket.destroy();
  }
}

function parseLogLines(text: string, msg?: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const r = JSON.parse(line) as Record<string, unknown>;
      if (msg === undefined || r['msg'] === msg) out.push(r);
    } catch { /* a line cut by the bounded capture */ }
  }
  return out;
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

async function fdsOf(pid: number): Promise<{ total: number; sockets: number }> {
  const dir = `/proc/${pid}/fd`;
  const names = await readdir(dir);
  let sockets = 0;
  await Promise.all(names.map(async (n) => {
    try {
      if ((await readlink(`${dir}/${n}`)).startsWith('socket:')) sockets++;
    } catch { /* closed while listing */ }
  }));
  return { total: names.length, sockets };
}

/** Keeps the first and the last `keep` bytes of a stream. */
class BoundedLog {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private dropped = 0;

  constructor(private readonly keep: number) {}

  add(b: Buffer): void {
    if (this.headBytes < this.keep) {
      const n = Math.min(b.length, this.keep - this.headBytes);
      this.head.push(b.subarray(0, n));
      this.headBytes += n;
      b = b.subarray(n);
      if (b.length === 0) return;
    }
    this.tail.push(b);
    this.tailBytes += b.length;
    while (this.tailBytes - (this.tail[0]?.length ?? 0) >= this.keep) {
      const first = this.tail.shift()!;
      this.tailBytes -= first.length;
      this.dropped += first.length;
    }
  }

  text(): string {
    const gap = this.dropped > 0 ? `\n[... ${this.dropped} bytes of output dropped ...]\n` : '';
    return Buffer.concat(this.head).toString('utf8') + gap + Buffer.concat(this.tail).toString('utf8');
  }
}
