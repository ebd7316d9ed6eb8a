/**
 * The peer broker: NATS JetStream from Debian's `nats-server`, file storage in a temp dir on a free
 * loopback port, with one stream created over the raw protocol. Nothing is installed at import; the runner
 * calls {@link ensureNatsServer} first.
 *
 * Durability: JetStream file streams ack after the write, without an fsync per message (2.9.10 has no
 * `sync_interval`; later versions default to 2 minutes). Label: "page-cache (JetStream sync_interval default)".
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { collectEvents, spawnTracked, stopPid, waitFor } from './processes.js';

export const NATS_DURABILITY = 'page-cache (JetStream sync_interval default)';

function natsServerPath(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null'], { encoding: 'utf8' });
  const p = r.stdout.trim().split('\n')[0] ?? '';
  return p === '' ? null : p;
}

/**
 * Returns the nats-server path, installing the Debian package when it is missing and we are root
 * (printing what it does through `log`); null if it is unavailable.
 */
export function ensureNatsServer(log: (line: string) => void): string | null {
  const found = natsServerPath();
  if (found !== null) return found;
  if (process.getuid?.() !== 0) {
    log('nats-server is not installed and we are not root: skipping JetStream (apt-get install -y nats-server)');
    return null;
  }
  log('nats-server is missing: running `apt-get install -y nats-server` (and `apt-get update` if needed)');
  const install = (): boolean => spawnSync('apt-get', ['install', '-y', 'nats-server'], { stdio: 'inherit' }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' });
    install();
  }
  return natsServerPath();
}

export function natsServerVersion(bin: string): string {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export interface NatsServer {
  readonly pid: number;
  readonly port: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `nats-server -js -sd <dir> -a 127.0.0.1 -p <port>` and waits until it greets with INFO. */
export async function startNatsServer(bin: string, storeDir: string, port: number): Promise<NatsServer> {
  const child = spawnTracked(bin, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)]);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn nats-server');
  let exited = false;
  const exit = collectEvents(child, () => undefined).then((r) => {
    exited = true;
    return r;
  });
  const ready = await waitFor(async () => !exited && (await greets(port)), 15000);
  if (!ready) {
    await stopPid(pid);
    const r = await exit;
    throw new Error(`nats-server did not start on port ${port}: ${r.stderr.slice(-800)}`);
  }
  return { pid, port, child, stop: () => stopPid(pid) };
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.setTimeout(1000);
    s.once('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString('latin1').startsWith('INFO'));
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/**
 * Creates a file-storage stream `name` over `subjects` with one raw-protocol request
 * (`PUB $JS.API.STREAM.CREATE.<name> <inbox> <len>`); retries until JetStream is ready or the deadline.
 */
export async function createStream(port: number, name: string, subjects: readonly string[], timeoutMs = 15000): Promise<void> {
  const config = JSON.stringify({ name, subjects, storage: 'file', retention: 'limits', discard: 'old', num_replicas: 1 });
  let last = '';
  const ok = await waitFor(async () => {
    last = await request(port, `$JS.API.STREAM.CREATE.${name}`, config);
    return last.includes('"config"') && !last.includes('"error"');
  }, timeoutMs);
  if (!ok) throw new Error(`could not create JetStream stream ${name}: ${last.slice(0, 300)}`);
}

/** One request/reply over a fresh connection; resolves with the reply payload (or an error text). */
function request(port: number, subject: string, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let acc = '';
    const done = (text: string): void => {
      s.destroy();
      resolve(text);
    };
    s.setTimeout(5000, () => done('timeout'));
    s.once('error', (e) => done(`error: ${e.message}`));
    s.once('connect', () => {
      const len = Buffer.byteLength(payload);
      s.write('CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.create 1\r\n' +
        `PUB ${subject} _INBOX.create ${len}\r\n${payload}\r\n`);
    });
    s.on('data', (d: Buffer) => {
      acc += d.toString('utf8');
      const m = /(?:^|\n)H?MSG _INBOX\.create 1 (?:\d+ )?(\d+)\r\n/.exec(acc);
      if (m?.[1] !== undefined && m.index !== undefined) {
        const start = acc.indexOf('\r\n', m.index + 1) + 2;
        if (acc.length >= start + Number(m[1])) done(acc.slice(start, start + Number(m[1])));
      } else if (acc.includes('-ERR')) done(acc);
    });
  });
}
