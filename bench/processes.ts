/**
 * Child processes of a benchmark run: spawned and tracked by pid, killed by pid on exit and on Ctrl-C;
 * free loopback ports; CPU time from /proc/<pid>/stat; JSON-line progress read from a child's stdout.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import { pathToFileURL } from 'node:url';

/** True when the module at `url` is the process entry point. */
export function isMain(url: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === url;
}

const children = new Set<number>();
const tempDirs = new Set<string>();
let hooked = false;

function cleanupAll(): void {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${children.size} child process(es)\n`);
      cleanupAll();
      process.exit(130);
    });
  }
}

/** Spawns a tracked child: it is killed by pid if this process exits first. */
export function spawnTracked(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  hookExit();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (child.pid !== undefined) {
    const pid = child.pid;
    children.add(pid);
    child.once('exit', () => children.delete(pid));
  }
  return child;
}

/** Tracks a pid we did not spawn (e.g. a daemonized server) so that it is killed on exit. */
export function trackPid(pid: number): void {
  hookExit();
  children.add(pid);
}

/** Stops `pid` with SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return readStat(pid)?.state !== 'Z';
    } catch {
      return false;
    }
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    children.delete(pid);
    return;
  }
  const ok = await waitFor(async () => !alive(), graceMs);
  if (!ok) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await waitFor(async () => !alive(), 5000);
  }
  children.delete(pid);
}

/** Registers a temp dir to be removed at exit (also removed earlier by the caller when done). */
export function trackTempDir(dir: string): void {
  hookExit();
  tempDirs.add(dir);
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `pred` every 20 ms until it holds or `timeoutMs` passes; resolves whether it held. */
export async function waitFor(pred: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface ProcStat {
  readonly state: string;
  readonly ppid: number;
  /** utime + stime in clock ticks. */
  readonly ticks: number;
}

const CLOCK_TICKS_PER_SEC = 100;

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: f[0] ?? '?', ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
}

/** CPU seconds (user + system) used so far by `pid` and all its live descendants. */
export function treeCpuSeconds(pid: number): number {
  const byParent = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p) || p <= 0) continue;
    const st = readStat(p);
    if (st === null) continue;
    ticks.set(p, st.ticks);
    const list = byParent.get(st.ppid);
    if (list === undefined) byParent.set(st.ppid, [p]);
    else list.push(p);
  }
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    total += ticks.get(p) ?? 0;
    stack.push(...(byParent.get(p) ?? []));
  }
  return total / CLOCK_TICKS_PER_SEC;
}

/** The pid of the process listening on 127.0.0.1:`port` (via /proc/net/tcp socket inodes), or null. */
export function listenerPid(port: number): number | null {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`) && f[9] !== undefined) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return null;
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1] !== undefined && inodes.has(m[1])) return pid;
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return null;
}

/** A JSON line printed by a bench child process. */
export type ChildEvent = { readonly event: string } & Record<string, unknown>;

/**
 * Calls `onEvent` for every JSON line the child prints on stdout, keeps the last lines of stderr, and
 * resolves when it exits with its exit code and the stderr tail.
 */
export function collectEvents(child: ChildProcess, onEvent: (e: ChildEvent) => void): Promise<{ code: number | null; stderr: string }> {
  let pending = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (s: string) => {
    pending += s;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try {
        onEvent(JSON.parse(line) as ChildEvent);
      } catch {
        // not one of our lines
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}
