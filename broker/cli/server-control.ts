/**
 * `metaq server stop` and `metaq server status`, found through the pid file as init scripts do.
 *
 * Exit codes of `status` follow the LSB init-script convention: 0 running (and answering `version`),
 * 1 not running but a stale pid file remains, 3 not running, 4 alive but not answering (starting or hung).
 */
import { rm } from 'node:fs/promises';
import { encodeVersion } from '../../sdk/protocol/encode.js';
import { requestOnce } from './broker-client.js';
import { configFromFlags, localHost, pidFilePath, type ConfigFlags } from './cli-config.js';
import { isAlive, readPid } from './pid-file.js';
import { waitFor } from './wait.js';

export interface StopFlags extends ConfigFlags {
  readonly pidFile?: string;
  /** Milliseconds to wait for the process to exit. */
  readonly timeout?: string;
  /** SIGKILL when the timeout passes. */
  readonly force?: boolean;
}

export interface StatusFlags extends ConfigFlags {
  readonly pidFile?: string;
  readonly host?: string;
}

export const StatusCodes = { RUNNING: 0, DEAD_WITH_PID_FILE: 1, NOT_RUNNING: 3, UNKNOWN: 4 } as const;

export async function serverStop(flags: StopFlags): Promise<number> {
  const config = await configFromFlags(flags);
  const pidFile = pidFilePath(config, flags.pidFile);
  const pid = await readPid(pidFile);
  if (pid === undefined) {
    process.stdout.write(`metaq server is not running (no pid file ${pidFile})\n`);
    return 0;
  }
  if (!isAlive(pid)) {
    await rm(pidFile, { force: true });
    process.stdout.write(`metaq server is not running (removed stale pid file ${pidFile} naming pid ${pid})\n`);
    return 0;
  }
  // The broker's own shutdown is bounded by shutdownTimeoutMs; leave it that, plus time to flush and exit.
  const timeoutMs = Number(flags.timeout ?? config.system.shutdownTimeoutMs + 20_000);
  process.kill(pid, 'SIGTERM');
  if (!await waitFor(() => !isAlive(pid), { timeoutMs })) {
    if (flags.force !== true) {
      process.stderr.write(`metaq: pid ${pid} still running ${timeoutMs} ms after SIGTERM (use --force to SIGKILL it)\n`);
      return 1;
    }
    process.stderr.write(`metaq: pid ${pid} still running ${timeoutMs} ms after SIGTERM: sending SIGKILL\n`);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), { timeoutMs: 10_000 });
  }
  await rm(pidFile, { force: true });
  process.stdout.write(`metaq server stopped (pid ${pid})\n`);
  return 0;
}

export async function serverStatus(flags: StatusFlags): Promise<number> {
  const config = await configFromFlags(flags);
  const pidFile = pidFilePath(config, flags.pidFile);
  const pid = await readPid(pidFile);
  if (pid === undefined) {
    process.stdout.write(`metaq server is not running (no pid file ${pidFile})\n`);
    return StatusCodes.NOT_RUNNING;
  }
  if (!isAlive(pid)) {
    process.stdout.write(`metaq server is not running, but pid file ${pidFile} names dead pid ${pid}\n`);
    return StatusCodes.DEAD_WITH_PID_FILE;
  }
  const host = flags.host ?? localHost(config);
  const port = config.system.serverPort;
  try {
    const res = await requestOnce({ host, port }, (opaque) => encodeVersion(opaque), 3000);
    process.stdout.write(`metaq server is running (pid ${pid}, ${host}:${port}, version ${res.body.toString('utf8').trim()})\n`);
    return StatusCodes.RUNNING;
  } catch (e) {
    const hint = port === 0 ? ' (the configuration says port 0: pass the real one with --port)' : '';
    process.stdout.write(`metaq server pid ${pid} is alive but does not answer on ${host}:${port}: ${(e as Error).message}${hint}\n`);
    return StatusCodes.UNKNOWN;
  }
}

export interface PromoteFlags extends ConfigFlags {
  host?: string;
  httpPort?: string;
}

/**
 * `metaq server promote`: failover, makes the slave named by -c (its dashboardHttpPort) the master
 * (`POST /api/ha/promote`). Exit 0 promoted, 1 refused (the reason is printed), 4 not answering.
 */
export async function serverPromote(flags: PromoteFlags): Promise<number> {
  const config = await configFromFlags(flags);
  const host = flags.host ?? localHost(config);
  const port = flags.httpPort === undefined ? config.system.dashboardHttpPort : Number(flags.httpPort);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/api/ha/promote`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(120_000) });
  } catch (e) {
    process.stderr.write(`metaq server promote: no answer from ${url}: ${(e as Error).message}\n`);
    return StatusCodes.UNKNOWN;
  }
  const body = await res.json() as Record<string, unknown>;
  if (!res.ok) {
    process.stderr.write(`metaq server promote: refused: ${String(body['error'] ?? res.status)}\n`);
    return 1;
  }
  process.stdout.write(`promoted: broker ${String(body['brokerId'])} is now the master at ${String(body['url'])} ` +
    `(${String(body['durationMs'])} ms, ${String(body['offsetsRepaired'])} consumer offsets repaired)\n`);
  return 0;
}
