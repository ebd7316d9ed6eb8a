/**
 * `metaq server start`: runs a broker in the foreground until SIGTERM/SIGINT, then shuts down gracefully
 * (exit 0); a second signal forces the exit (code 1). With `--daemon` it re-spawns itself detached, logging
 * to a file, and returns once the broker accepts connections.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { startBroker } from '../broker.js';
import type { BrokerConfig } from '../config/broker-config.js';
import { configFromFlags, localHost, pidFilePath, type ConfigFlags } from './cli-config.js';
import { claimPidFile, releasePidFile } from './pid-file.js';
import { ProgressBar } from './progress.js';
import { tailFile, waitFor } from './wait.js';

export interface StartFlags extends ConfigFlags {
  readonly daemon?: boolean;
  readonly pidFile?: string;
  readonly logFile?: string;
  readonly logLevel?: string;
  /** --daemon: how long to wait for the broker to accept connections (recovery may take a while). */
  readonly startTimeout?: string;
}

/** Message a daemon child sends its parent over IPC once it serves. */
interface ReadyMessage {
  readonly type: 'metaq-ready';
  readonly port: number;
}

export async function serverStart(flags: StartFlags): Promise<number> {
  const config = await configFromFlags(flags);
  const pidFile = pidFilePath(config, flags.pidFile);
  if (flags.daemon === true) return daemonize(flags, config, pidFile);
  return runForeground(config, pidFile, createLogger(flags));
}

function createLogger(flags: StartFlags): Logger {
  const level = flags.logLevel ?? 'info';
  // Synchronous writes: the lines explaining a crash must reach the file before the process dies.
  const dest = flags.logFile === undefined
    ? pino.destination({ dest: 1, sync: true })
    : pino.destination({ dest: resolve(flags.logFile), mkdir: true, append: true, sync: true });
  return pino({ level }, dest);
}

async function runForeground(config: BrokerConfig, pidFile: string, logger: Logger): Promise<number> {
  let signalled: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled !== undefined) {
      logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
      process.exit(1);
    }
    signalled = signal;
    logger.info({ signal }, 'signal received: shutting down');
    wake?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });

  await claimPidFile(pidFile);
  const bar = new ProgressBar({ label: 'recovery' });
  let broker: Awaited<ReturnType<typeof startBroker>>;
  try {
    broker = await startBroker(config, { logger, onProgress: (done, total, what) => bar.update(done, total, what) });
  } catch (err) {
    bar.finish();
    logger.fatal({ err }, 'broker failed to start');
    await releasePidFile(pidFile);
    return 1;
  }
  bar.finish();
  logger.info({ port: broker.port, pidFile, config: config.sourceFile ?? '<embedded>' }, 'metaq server ready');
  process.send?.({ type: 'metaq-ready', port: broker.port } satisfies ReadyMessage);

  // A signal during recovery is honoured as soon as the broker is up: closing it then is the clean path.
  if (signalled === undefined) await new Promise<void>((r) => { wake = r; });
  let code = 0;
  try {
    await broker.close();
  } catch (err) {
    logger.error({ err }, 'graceful shutdown failed');
    code = 1;
  }
  await releasePidFile(pidFile);
  logger.info({ code }, 'metaq server exiting');
  return code;
}

async function daemonize(flags: StartFlags, config: BrokerConfig, pidFile: string): Promise<number> {
  const logFile = resolve(flags.logFile ?? join(config.system.dataPath, 'metaq.log'));
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  // Same command line minus --daemon; the log file is the child's stdout, and the pid file is made explicit.
  const args = process.argv.slice(2).filter((a) => a !== '--daemon' && a !== '-d');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args, '--pid-file', pidFile], {
    detached: true,
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  let exited: number | null | undefined;
  let readyPort: number | undefined;
  child.on('exit', (code, signal) => { exited = code ?? (signal === null ? 1 : 128); });
  child.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && (m as ReadyMessage).type === 'metaq-ready') readyPort = (m as ReadyMessage).port;
  });
  const timeoutMs = Number(flags.startTimeout ?? 120_000);
  const up = await waitFor(async () => exited !== undefined || (readyPort !== undefined && await accepts(localHost(config), readyPort)), { timeoutMs });
  if (exited !== undefined) {
    process.stderr.write(`metaq: the broker exited during start (code ${exited}); last lines of ${logFile}:\n` +
      `${await tailFile(logFile, 30)}\n`);
    return 1;
  }
  child.disconnect();
  child.unref();
  if (!up) {
    process.stderr.write(`metaq: broker (pid ${child.pid}) not accepting connections after ${timeoutMs} ms; ` +
      `it keeps starting in the background, see ${logFile}\n`);
    return 1;
  }
  process.stdout.write(`metaq server started (pid ${child.pid}, port ${readyPort}, pid file ${pidFile}, log ${logFile})\n`);
  return 0;
}

/** True when host:port accepts a TCP connection. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolveAccept) => {
    const socket = connect({ host, port });
    socket.once('connect', () => { socket.destroy(); resolveAccept(true); });
    socket.once('error', () => { socket.destroy(); resolveAccept(false); });
  });
}
