/**
 * Consume catch-up: one connection walks every partition from offset 0 with
 * `get <topic> <group> <partition> <offset> <maxSize> <opaque>` (opaque = partition), one get in flight per
 * partition and all partitions at once, counting whole records by their 20-byte headers (a cut tail is
 * fetched again from its start). A partition is done when it has yielded the number of messages the
 * producer got acked for it. Every 64th record's CRC is checked (`crcEvery`: 1 checks all, as the SDK does). Run as a process:
 *
 *   node --import tsx bench/consume.ts '{"port":8123,"topic":"bench","expected":[1000,1000]}'
 *
 * Prints `window-start`, `window-end` and `result` JSON lines like the load generators.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { crc32Masked } from '../sdk/protocol/record.js';
import { CR } from './ascii.js';
import { LineTokens, parseInt64 } from '../sdk/protocol/line-tokens.js';
import { optionsFromArgv } from './load-driver.js';
import { isMain } from './processes.js';

export interface ConsumeOptions {
  readonly host: string;
  readonly port: number;
  readonly topic: string;
  readonly group: string;
  /** Messages to read from each partition (index = partition). */
  readonly expected: readonly number[];
  readonly maxSize: number;
  readonly timeoutMs: number;
  /** Check the CRC of every n-th record (default 64; 1 = every record, as the SDK does). */
  readonly crcEvery?: number;
}

export interface ConsumeResult {
  readonly event: 'result';
  readonly msgs: number;
  /** Bytes of whole records (headers included). */
  readonly bytes: number;
  readonly seconds: number;
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
  readonly gets: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly correct: boolean;
  readonly clientCpuSec: number;
}

const HEADER = 20;
const CRC_SAMPLE_DEFAULT = 64;

/** Reads every partition to its expected count; resolves with the figures. */
export async function runConsume(opts: ConsumeOptions, emit: (line: object) => void): Promise<ConsumeResult> {
  const parts = opts.expected.length;
  const crcEvery = opts.crcEvery ?? CRC_SAMPLE_DEFAULT;
  const offsets = new Float64Array(parts);
  const counts = new Float64Array(parts);
  let open = opts.expected.filter((n) => n > 0).length;
  let msgs = 0;
  let bytes = 0;
  let gets = 0;
  let errors = 0;
  let firstError: string | null = null;
  const noteError = (what: string): void => {
    errors++;
    firstError ??= what;
  };
  const socket = net.connect({ host: opts.host, port: opts.port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const timer = setTimeout(() => {
    noteError(`timed out with ${open} partition(s) unfinished`);
    finish();
  }, opts.timeoutMs);

  const sendGet = (p: number): void => {
    gets++;
    socket.write(`get ${opts.topic} ${opts.group} ${p} ${offsets[p]} ${opts.maxSize} ${p}\r\n`);
  };
  const partitionDone = (): void => {
    if (--open === 0) finish();
  };

  const onValue = (p: number, body: Buffer): void => {
    let pos = 0;
    let n = 0;
    while (pos + HEADER <= body.length) {
      const len = body.readInt32BE(pos);
      if (len < 0 || pos + HEADER + len > body.length) break;
      if ((counts[p]! + n) % crcEvery === 0 && crc32Masked(body.subarray(pos + HEADER, pos + HEADER + len)) !== body.readInt32BE(pos + 4)) {
        noteError(`CRC mismatch in partition ${p} at offset ${offsets[p]! + pos}`);
      }
      pos += HEADER + len;
      n++;
    }
    if (pos === 0) {
      noteError(`partition ${p}: no whole record in ${body.length} bytes at offset ${offsets[p]}`);
      return partitionDone();
    }
    offsets[p]! += pos;
    counts[p]! += n;
    msgs += n;
    bytes += pos;
    if (counts[p]! >= opts.expected[p]!) partitionDone();
    else sendGet(p);
  };

  const onResult = (p: number, code: number, text: string): void => {
    if (code === 404 && counts[p]! < opts.expected[p]!) {
      noteError(`partition ${p}: end of log after ${counts[p]} of ${opts.expected[p]} messages`);
    } else if (code !== 404) {
      noteError(`partition ${p}: result ${code} ${text}`);
    }
    partitionDone();
  };

  installReader(socket, onValue, onResult, noteError);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  emit({ event: 'window-start' });
  for (let p = 0; p < parts; p++) if (opts.expected[p]! > 0) sendGet(p);
  if (open === 0) finish();
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  emit({ event: 'window-end' });
  clearTimeout(timer);
  socket.destroy();
  const cpu = process.cpuUsage(cpu0);
  const expectedTotal = opts.expected.reduce((a, b) => a + b, 0);
  if (msgs !== expectedTotal) noteError(`read ${msgs} messages, expected ${expectedTotal}`);
  return {
    event: 'result', msgs, bytes, seconds, msgsPerSec: msgs / seconds, mbPerSec: bytes / seconds / 1e6, gets,
    errors, firstError, correct: errors === 0, clientCpuSec: (cpu.user + cpu.system) / 1e6,
  };
}

/**
 * Frames `value <len> <opaque>\r\n<body>` and `result <code> <len> <opaque>\r\n<body>` off the socket. A
 * large body is copied once into a buffer of its own size, not re-concatenated per chunk.
 */
function installReader(
  socket: net.Socket,
  onValue: (p: number, body: Buffer) => void,
  onResult: (p: number, code: number, text: string) => void,
  noteError: (what: string) => void,
): void {
  const line = new LineTokens();
  const { starts, ends } = line;
  let carry: Buffer | null = null;
  let body: Buffer | null = null;
  let filled = 0;
  let isValue = false;
  let code = 0;
  let opaque = 0;
  const deliver = (b: Buffer): void => {
    if (isValue) onValue(opaque, b);
    else onResult(opaque, code, b.toString('utf8', 0, Math.min(200, b.length)));
  };
  socket.on('data', (chunk: Buffer) => {
    let buf = chunk;
    let pos = 0;
    while (pos < buf.length) {
      if (body !== null) {
        const n = Math.min(body.length - filled, buf.length - pos);
        buf.copy(body, filled, pos, pos + n);
        filled += n;
        pos += n;
        if (filled === body.length) {
          const b = body;
          body = null;
          deliver(b);
        }
        continue;
      }
      if (carry !== null) {
        buf = Buffer.concat([carry, buf.subarray(pos)]);
        pos = 0;
        carry = null;
      }
      const cr = buf.indexOf(CR, pos);
      if (cr < 0 || cr + 1 >= buf.length) {
        carry = Buffer.from(buf.subarray(pos));
        return;
      }
      const n = line.split(buf, pos, cr) ? line.count : -1;
      isValue = n === 3 && buf[pos] === 0x76;
      const ok = isValue || (n === 4 && buf[pos] === 0x72);
      const len = ok ? parseInt64(buf, starts[n - 2]!, ends[n - 2]!) : Number.NaN;
      opaque = ok ? parseInt64(buf, starts[n - 1]!, ends[n - 1]!) : Number.NaN;
      code = isValue ? 200 : parseInt64(buf, starts[1]!, ends[1]!);
      if (!ok || Number.isNaN(len) || Number.isNaN(opaque)) {
        noteError(`unexpected reply ${JSON.stringify(buf.toString('latin1', pos, Math.min(cr, pos + 60)))}`);
        socket.destroy();
        return;
      }
      pos = cr + 2;
      if (buf.length - pos >= len) {
        deliver(buf.subarray(pos, pos + len));
        pos += len;
      } else {
        body = Buffer.allocUnsafe(len);
        filled = 0;
      }
    }
  });
  socket.on('error', (err) => noteError(err.message));
}

const DEFAULTS: ConsumeOptions = {
  host: '127.0.0.1', port: 8123, topic: 'bench', group: 'bench-consume', expected: [], maxSize: 1024 * 1024,
  timeoutMs: 120000,
};

if (isMain(import.meta.url)) {
  const emit = (line: object): void => {
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  runConsume(optionsFromArgv(DEFAULTS), emit).then((r) => {
    emit(r);
    process.exitCode = r.correct ? 0 : 2;
  }, (err: unknown) => {
    emit({ event: 'fatal', error: (err as Error).message });
    process.exitCode = 1;
  });
}
