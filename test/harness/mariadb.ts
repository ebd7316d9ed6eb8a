/**
 * A private MariaDB server for tests: `mariadbd` from the Debian package `mariadb-server`, in its own temp datadir,
 * on a free loopback port and a private unix socket, with the binlog on in ROW format (FULL row images) so that the
 * binlog connector can read it. Nothing is shared with a system MariaDB: `--no-defaults` everywhere.
 *
 * Every started server is stopped by pid: `stop()` sends SIGTERM, then SIGKILL after a deadline, and removes the
 * temp dir; servers still running when the test process exits are killed with SIGKILL.
 *
 * @example
 * ```ts
 * const db = await startMariaDb();
 * const pool = createPool({ host: '127.0.0.1', port: db.port, user: db.user, password: db.password, database: db.database });
 * ...
 * await pool.end();
 * await db.stop();
 * ```
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createConnection, type Connection } from 'mysql2/promise';
import { freePort } from './free-port.js';

export interface MariaDbOptions {
  /** How long to wait for the server to answer; default 30 s. */
  readonly startTimeoutMs?: number;
  /** Extra `mariadbd` arguments (e.g. `--binlog-row-metadata=FULL`). */
  readonly extraArgs?: readonly string[];
}

export interface MariaDbServer {
  /** TCP port on 127.0.0.1. */
  readonly port: number;
  readonly host: '127.0.0.1';
  /** The server's unix socket. */
  readonly socketPath: string;
  /**
   * A user with every privilege on {@link database} plus REPLICATION SLAVE, REPLICATION CLIENT and SELECT on `*.*`
   * (what a binlog reader needs), authenticated with mysql_native_password (mysql2 has no ed25519).
   */
  readonly user: string;
  readonly password: string;
  /** A database created for the test. */
  readonly database: string;
  /** `root` with an empty password, over {@link socketPath} or TCP. */
  readonly rootUser: string;
  readonly rootPassword: string;
  /** The temp dir holding datadir, socket, binlogs and `error.log`. */
  readonly dir: string;
  readonly pid: number;
  /** Stops the server (SIGTERM, SIGKILL after `timeoutMs`, default 10 s) and removes its temp dir. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

const execFileAsync = promisify(execFile);

const USER = 'metaq';
const PASSWORD = 'metaq-test';
const DATABASE = 'metaq_test';

/** Running servers and their temp dirs, killed and removed if the test process exits without stopping them. */
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAllNow = (): void => {
    for (const [child, dir] of live) {
      try { child.kill('SIGKILL'); } catch { /* already gone */ }
      try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort at exit */ }
    }
    live.clear();
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

/** Finds a program in PATH or in the sbin directories Debian uses (a non-root PATH may lack /usr/sbin). */
function findProgram(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin', '/sbin'];
  for (const d of dirs) {
    if (d !== '' && existsSync(join(d, name))) return join(d, name);
  }
  throw new Error(`${name} not found in PATH or /usr/sbin: install the Debian package mariadb-server ` +
    '(apt-get install -y mariadb-server); the MariaDB tests need a real server');
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function installDatadir(dir: string): Promise<string> {
  const datadir = join(dir, 'data');
  // A private tmpdir: the server's temporary tables must not live in the shared /tmp, where other tests clean up.
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const args = ['--no-defaults', `--datadir=${datadir}`, `--tmpdir=${join(dir, 'tmp')}`,
    '--auth-root-authentication-method=normal', '--skip-test-db'];
  if (isRoot()) args.push('--user=root');
  try {
    await execFileAsync(findProgram('mariadb-install-db'), args, { timeout: 60_000 });
  } catch (e) {
    const r = e as Error & { stdout?: string; stderr?: string };
    throw new Error(`mariadb-install-db failed: ${r.message}\n${r.stdout ?? ''}\n${r.stderr ?? ''}`.slice(-4000));
  }
  return datadir;
}

async function tail(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).slice(-3000);
  } catch {
    return '(no error log)';
  }
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(false); }, timeoutMs);
    const onExit = (): void => { clearTimeout(timer); resolve(true); };
    child.once('exit', onExit);
  });
}

async function killAndWait(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    if (!await waitExit(child, timeoutMs)) {
      child.kill('SIGKILL');
      await waitExit(child, 10_000);
    }
  }
  live.delete(child);
}

/** Polls until root can connect over the socket; fails early when the server died. */
async function connectWhenReady(child: ChildProcess, socketPath: string, errorLog: string,
  timeoutMs: number): Promise<Connection> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`mariadbd exited (${child.exitCode ?? child.signalCode}) while starting:\n${await tail(errorLog)}`);
    }
    try {
      return await createConnection({ socketPath, user: 'root', password: '', connectTimeout: 2000 });
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`mariadbd did not answer within ${timeoutMs} ms (last error: ${(last as Error).message}):\n` +
        await tail(errorLog));
    }
    await delay(25);
  }
}

async function createTestAccounts(conn: Connection): Promise<void> {
  await conn.query(`CREATE DATABASE \`${DATABASE}\` CHARACTER SET utf8mb4`);
  // '%' for TCP (with --skip-name-resolve) and 'localhost' for the socket.
  for (const host of ['%', 'localhost']) {
    await conn.query('CREATE USER ?@? IDENTIFIED VIA mysql_native_password USING PASSWORD(?)', [USER, host, PASSWORD]);
    await conn.query(`GRANT ALL PRIVILEGES ON \`${DATABASE}\`.* TO ?@?`, [USER, host]);
    await conn.query('GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO ?@?', [USER, host]);
  }
}

function spawnServer(datadir: string, dir: string, port: number, extraArgs: readonly string[]): ChildProcess {
  const args = [
    '--no-defaults', `--datadir=${datadir}`, `--tmpdir=${join(dir, 'tmp')}`, '--bind-address=127.0.0.1', `--port=${port}`, '--skip-networking=0',
    `--socket=${join(dir, 'mysqld.sock')}`, `--pid-file=${join(dir, 'mysqld.pid')}`,
    `--log-error=${join(dir, 'error.log')}`, `--log-bin=${join(datadir, 'binlog')}`, '--binlog-format=ROW',
    '--binlog-row-image=FULL', '--server-id=1', '--skip-name-resolve',
    // A test server: small buffers, no double-write cost, fast start and stop.
    '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M', '--innodb-flush-log-at-trx-commit=2',
    ...extraArgs,
  ];
  if (isRoot()) args.push('--user=root');
  const child = spawn(findProgram('mariadbd'), args, { stdio: 'ignore' });
  live.set(child, dir);
  installExitHook();
  child.once('exit', () => live.delete(child));
  return child;
}

/**
 * Starts a private MariaDB server and creates a test database and user. Throws (never skips) when `mariadbd` is
 * missing. Retries on another port when the chosen one was taken in the meantime.
 */
export async function startMariaDb(options: MariaDbOptions = {}): Promise<MariaDbServer> {
  const dir = await mkdtemp(join(tmpdir(), 'metaq-mariadb-'));
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  try {
    const datadir = await installDatadir(dir);
    const socketPath = join(dir, 'mysqld.sock');
    const errorLog = join(dir, 'error.log');
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const child = spawnServer(datadir, dir, port, options.extraArgs ?? []);
      let conn: Connection;
      try {
        conn = await connectWhenReady(child, socketPath, errorLog, timeoutMs);
      } catch (e) {
        await killAndWait(child, 5000);
        const log = await tail(errorLog);
        if (attempt < 3 && /Bind on TCP\/IP port|Address already in use/i.test(log)) continue;
        throw e;
      }
      try {
        await createTestAccounts(conn);
      } catch (e) {
        await killAndWait(child, 5000);
        throw e;
      } finally {
        await conn.end();
      }
      return makeServer(child, dir, port, socketPath);
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

function makeServer(child: ChildProcess, dir: string, port: number, socketPath: string): MariaDbServer {
  let stopping: Promise<void> | undefined;
  return {
    port, host: '127.0.0.1', socketPath, user: USER, password: PASSWORD, database: DATABASE,
    rootUser: 'root', rootPassword: '', dir, pid: child.pid ?? -1,
    stop(stopTimeoutMs = 10_000) {
      stopping ??= (async () => {
        await killAndWait(child, stopTimeoutMs);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
