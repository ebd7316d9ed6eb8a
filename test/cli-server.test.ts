import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { isAlive, readPid } from '../broker/cli/pid-file.js';
import { METAQ_BIN, runMetaq } from '../broker/cli/run-cli.js';

/** A loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function waitFor(what: string, predicate: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

describe('cli/server start, stop, status', () => {
  let dir = '';
  const pids = new Set<number>();
  const children: ChildProcess[] = [];

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'metaq-cli-server-')); });
  after(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  async function flags(name: string): Promise<{ dataDir: string; port: number; args: string[] }> {
    const dataDir = join(dir, name);
    const port = await freePort();
    return { dataDir, port, args: ['--data-path', dataDir, '--port', String(port), '--set', 'system.dashboardHttpPort=0'] };
  }

  it('runs in the foreground, answers status and stats, and stops gracefully on server stop', async () => {
    const { dataDir, args } = await flags('foreground');
    const child = spawn(process.execPath, [METAQ_BIN, 'server', 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let log = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { log += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { log += s; });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    pids.add(child.pid!);

    await waitFor('status 0', async () => (await runMetaq(['server', 'status', ...args])).code === 0);
    assert.equal(await readPid(join(dataDir, 'metaq.pid')), child.pid);
    const status = await runMetaq(['server', 'status', ...args]);
    assert.match(status.stdout, new RegExp(`running \\(pid ${child.pid}, 127\\.0\\.0\\.1:\\d+, version \\d+\\.\\d+\\.\\d+\\)`));
    const stats = await runMetaq(['stats', ...args]);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, new RegExp(`^STATS\\r?\\n[\\s\\S]*pid ${child.pid}[\\s\\S]*END`));
    const topics = await runMetaq(['topics', ...args]);
    assert.equal(topics.code, 0, topics.stderr);
    assert.match(topics.stdout, /^STATS/);

    const stop = await runMetaq(['server', 'stop', ...args]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, new RegExp(`stopped \\(pid ${child.pid}\\)`));
    assert.equal(await exited, 0, log);
    assert.match(log, /"msg":"metaq server exiting"/);
    assert.equal(existsSync(join(dataDir, 'metaq.pid')), false);
    assert.equal((await runMetaq(['server', 'status', ...args])).code, 3);
  });

  it('starts as a daemon, returns once it accepts connections, and is stopped through its pid file', async () => {
    const { dataDir, args } = await flags('daemon');
    const pidFile = join(dir, 'daemon.pid');
    const start = await runMetaq(['server', 'start', '--daemon', '--pid-file', pidFile, ...args], { timeoutMs: 60_000 });
    assert.equal(start.code, 0, start.stderr);
    const pid = await readPid(pidFile);
    assert.ok(pid !== undefined && isAlive(pid), `pid file ${pidFile} names no live process`);
    pids.add(pid);
    assert.match(start.stdout, new RegExp(`started \\(pid ${pid}, port \\d+`));

    assert.equal((await runMetaq(['server', 'status', '--pid-file', pidFile, ...args])).code, 0);
    const second = await runMetaq(['server', 'start', '--pid-file', pidFile, ...args]);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, new RegExp(`another broker is running \\(pid ${pid}`));

    const stop = await runMetaq(['server', 'stop', '--pid-file', pidFile, ...args]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(isAlive(pid), false);
    assert.equal((await runMetaq(['server', 'status', '--pid-file', pidFile, ...args])).code, 3);
    assert.match(await readFile(join(dataDir, 'metaq.log'), 'utf8'), /"msg":"metaq server ready"/);
  });

  it('reports a daemon that fails to start with the tail of its log, and exits 1', async () => {
    const { dataDir, port, args } = await flags('busy-port');
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '0.0.0.0', r));
    try {
      const start = await runMetaq(['server', 'start', '--daemon', ...args], { timeoutMs: 60_000 });
      assert.equal(start.code, 1, start.stdout);
      assert.match(start.stderr, /the broker exited during start \(code 1\); last lines of .*metaq\.log/);
      assert.match(start.stderr, /EADDRINUSE/);
      assert.equal(existsSync(join(dataDir, 'metaq.pid')), false);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('says "dead with a pid file" (status 1) for a stale pid file, and stop clears it', async () => {
    const { dataDir, args } = await flags('stale');
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.on('exit', r));
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, 'metaq.pid'), `${gone.pid}\n`);
    const status = await runMetaq(['server', 'status', ...args]);
    assert.equal(status.code, 1);
    assert.match(status.stdout, new RegExp(`names dead pid ${gone.pid}`));
    const stop = await runMetaq(['server', 'stop', ...args]);
    assert.equal(stop.code, 0);
    assert.match(stop.stdout, /removed stale pid file/);
    assert.equal(existsSync(join(dataDir, 'metaq.pid')), false);
  });
});
