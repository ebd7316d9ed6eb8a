/**
 * A private ZooKeeper server for tests: Debian's `zookeeper` package run as `ZooKeeperServerMain` with its own
 * zoo.cfg on a free loopback port and a temp data dir. Ready when the four-letter `srvr` command reports `Mode:`
 * (`ruok` answers as soon as the port opens, before the server serves). Stopped by pid; `pause`/`resume` (SIGSTOP,
 * SIGCONT) let session-expiry tests freeze it. A missing package is an error, never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { ZkSession, type ZkCredentials } from '../../sdk/protocol/zk/zk-session.js';
import { freePort } from './free-port.js';
import { tempDir } from './temp-dir.js';

const ZK_JAR = '/usr/share/java/zookeeper.jar';
/** ZooKeeper logs through SLF4J and ships no binding; the simple one prints warnings to stderr. */
const SLF4J_SIMPLE = '/usr/share/java/slf4j-simple.jar';

export interface ZooKeeperServer {
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly connectString: string;
  readonly pid: number;
  readonly dir: string;
  /** The output of `srvr`. */
  srvr(): Promise<string>;
  /** SIGSTOP: the server stops answering (sessions expire once it resumes). */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** SIGTERM, SIGKILL after 5 s; removes the data dir. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hookInstalled = false;

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/** Sends a four-letter command and returns the whole answer ('' when the server closed without one). */
export function fourLetter(port: number, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`ZooKeeper on ${port} did not answer ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(command));
    socket.on('data', (d: Buffer) => { out += d.toString('utf8'); });
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** Starts a standalone ZooKeeper on a free loopback port; resolves once it serves requests. */
export async function startZooKeeper(options: { startTimeoutMs?: number } = {}): Promise<ZooKeeperServer> {
  for (const f of [ZK_JAR, SLF4J_SIMPLE]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: install the Debian packages zookeeper and libslf4j-java`);
  }
  const dir = await tempDir('metaq-zk-');
  const port = await freePort();
  await mkdir(join(dir.path, 'data'));
  await writeFile(join(dir.path, 'zoo.cfg'), [
    'tickTime=500',
    // Sessions may be as short as 2 ticks (1 s): expiry tests stay fast.
    'minSessionTimeout=1000',
    `dataDir=${join(dir.path, 'data')}`,
    `clientPort=${port}`,
    'clientPortAddress=127.0.0.1',
    'maxClientCnxns=0',
    'admin.enableServer=false',
    '4lw.commands.whitelist=ruok,srvr,stat,mntr,cons',
    '',
  ].join('\n'));
  const child = spawn('java', ['-Xmx256m', '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
    '-cp', `${ZK_JAR}:${SLF4J_SIMPLE}`, 'org.apache.zookeeper.server.ZooKeeperServerMain', join(dir.path, 'zoo.cfg')],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  installExitHook();
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString('utf8')).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await dir.remove();
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`ZooKeeper exited with ${child.exitCode} before serving: ${stderr}`);
    }
    const answer = await fourLetter(port, 'srvr').catch(() => '');
    if (answer.includes('Mode:')) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`ZooKeeper on ${port} did not serve within the start timeout: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    connectString: `127.0.0.1:${port}`,
    pid: child.pid!,
    dir: dir.path,
    srvr: () => fourLetter(port, 'srvr'),
    pause: () => { child.kill('SIGSTOP'); },
    resume: () => { child.kill('SIGCONT'); },
    stop,
  };
}

/**
 * Expires a session the ZooKeeper FAQ way: a second client joins it with its id and password, then closes it. The
 * owner's client may win the session back (it reconnects at once when the twin takes over its connection) before the
 * twin's close, so the trick is repeated until `lost()` says the owner noticed, up to `attempts` times.
 */
export async function expireSession(connect: string, credentials: ZkCredentials, lost: () => boolean,
  attempts = 10): Promise<void> {
  const logger = pino({ level: 'silent' });
  for (let i = 0; i < attempts; i++) {
    const twin = await ZkSession.open({ connect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger, resume: credentials })
      .catch(() => undefined);  // already expired: the owner will notice
    await twin?.close();
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      if (lost()) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`the session was not expired after ${attempts} attempts`);
}
