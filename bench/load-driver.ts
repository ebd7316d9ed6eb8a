/**
 * The pipelined load engine shared by the MetaQ producer and the NATS publisher: N connections, each with a
 * ring of pre-encoded frames (one per slot; the slot number is the frame's opaque or reply subject), at most
 * `inFlight` unanswered frames per connection, contiguous runs of free slots sent with one socket write.
 * After a warm-up it measures a window, then stops sending and waits for every sent frame to be answered:
 * a run is correct only if acked == sent and nothing failed.
 *
 * Progress events go to stdout as JSON lines so the runner can sample the server's CPU at the window edges:
 * `{"event":"window-start"}`, `{"event":"window-end"}`, then `{"event":"result", ...}`.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { joinCarry } from './ascii.js';
import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';

/** Receives what a protocol parser found in the reply bytes. */
export interface ReplySink {
  ack(slot: number): void;
  fail(slot: number, what: string): void;
  /** Sends bytes back (e.g. NATS PONG). */
  write(bytes: Buffer): void;
}

export interface EncodedRing {
  /** All frames of the ring back to back. */
  readonly frames: Buffer;
  /** `starts[i]` is where slot i's frame begins; `starts[slots]` is the end. */
  readonly starts: Int32Array;
  /** Partition (or subject index) of each slot. */
  readonly partitionOf: Int32Array;
}

/**
 * Encodes a ring of `slots` frames for connection `connIndex`, spreading them round-robin over `partitions`;
 * `write` writes one frame at `pos` (at most `maxFrameBytes`) and returns the position after it.
 */
export function buildRing(connIndex: number, slots: number, partitions: number, maxFrameBytes: number,
  write: (frames: Buffer, pos: number, slot: number, partition: number) => number): EncodedRing {
  const frames = Buffer.allocUnsafe(slots * maxFrameBytes);
  const starts = new Int32Array(slots + 1);
  const partitionOf = new Int32Array(slots);
  let pos = 0;
  for (let slot = 0; slot < slots; slot++) {
    const partition = (connIndex * slots + slot) % partitions;
    starts[slot] = pos;
    partitionOf[slot] = partition;
    pos = write(frames, pos, slot, partition);
  }
  starts[slots] = pos;
  return { frames: frames.subarray(0, pos), starts, partitionOf };
}

export interface LoadProtocol {
  /** Bytes written once after connecting (handshake, subscriptions), or null. */
  preamble(connIndex: number): Buffer | null;
  encodeRing(connIndex: number, slots: number): EncodedRing;
  /** Parses whole replies from `buf[0..]` into the sink; returns the bytes consumed. Throws on garbage. */
  parse(buf: Buffer, sink: ReplySink): number;
}

export interface LoadOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Unanswered frames allowed per connection. */
  readonly inFlight: number;
  readonly payloadSize: number;
  readonly partitions: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** How long to wait for the last replies after the window. */
  readonly drainTimeoutMs: number;
  /** Include acked counts per partition in the result (the consume phase needs them). */
  readonly reportPartitions: boolean;
}

/** The load generators' defaults, but for the port (each protocol has its own). */
export const LOAD_DEFAULTS: Omit<LoadOptions, 'port'> = {
  host: '127.0.0.1',
  connections: 16,
  inFlight: 512,
  payloadSize: 1024,
  partitions: 8,
  warmupMs: 2000,
  measureMs: 8000,
  drainTimeoutMs: 30000,
  reportPartitions: false,
};

export interface LoadResult {
  readonly event: 'result';
  /** Frames acked inside the measured window. */
  readonly msgs: number;
  /** Payload bytes of those frames. */
  readonly bytes: number;
  readonly seconds: number;
  readonly msgsPerSec: number;
  readonly mbPerSec: number;
  readonly sent: number;
  readonly acked: number;
  readonly errors: number;
  readonly firstError: string | null;
  /** acked == sent and no errors. */
  readonly correct: boolean;
  readonly clientCpuSec: number;
  readonly latency: LatencySummary;
  readonly perPartition?: number[];
}

interface Conn {
  readonly socket: net.Socket;
  readonly ring: EncodedRing;
  readonly busy: Uint8Array;
  readonly sentAt: Float64Array;
  next: number;
  inflight: number;
  carry: Buffer | null;
  closed: boolean;
}

/** Runs the load and resolves with its result; `emit` receives the progress lines. */
export async function runLoad(opts: LoadOptions, protocol: LoadProtocol, emit: (line: object) => void): Promise<LoadResult> {
  const slots = Math.max(2 * opts.inFlight, 64);
  const minBatch = Math.max(1, Math.min(64, Math.floor(opts.inFlight / 8)));
  const hist = new LatencyHistogram();
  const perPartition = new Float64Array(opts.partitions);
  let sent = 0;
  let acked = 0;
  let errors = 0;
  let firstError: string | null = null;
  let measuring = false;
  let stopping = false;
  let now = performance.now();
  let onIdle: (() => void) | null = null;

  const noteError = (what: string): void => {
    errors++;
    firstError ??= what;
  };

  const pump = (c: Conn): void => {
    if (stopping || c.closed) return;
    let free = opts.inFlight - c.inflight;
    if (free < minBatch && c.inflight > 0) return;
    const t = performance.now();
    while (free > 0) {
      const s = c.next;
      let e = s;
      while (e < slots && free > 0 && c.busy[e] === 0) {
        c.busy[e] = 1;
        c.sentAt[e] = t;
        e++;
        free--;
      }
      if (e === s) break;
      c.socket.write(c.ring.frames.subarray(c.ring.starts[s]!, c.ring.starts[e]!));
      c.inflight += e - s;
      sent += e - s;
      c.next = e === slots ? 0 : e;
    }
  };

  const conns: Conn[] = [];
  for (let i = 0; i < opts.connections; i++) {
    conns.push(await openConn(i));
  }

  async function openConn(index: number): Promise<Conn> {
    const socket = net.connect({ host: opts.host, port: opts.port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c: Conn = {
      socket,
      ring: protocol.encodeRing(index, slots),
      busy: new Uint8Array(slots),
      sentAt: new Float64Array(slots),
      next: 0,
      inflight: 0,
      carry: null,
      closed: false,
    };
    const sink: ReplySink = {
      ack(slot) {
        if (slot < 0 || slot >= slots || c.busy[slot] !== 1) {
          noteError(`reply for slot ${slot} that is not in flight`);
          return;
        }
        c.busy[slot] = 0;
        c.inflight--;
        acked++;
        if (opts.reportPartitions) perPartition[c.ring.partitionOf[slot]!]! += 1;
        if (measuring) hist.record(now - c.sentAt[slot]!);
      },
      fail(slot, what) {
        if (slot >= 0 && slot < slots && c.busy[slot] === 1) {
          c.busy[slot] = 0;
          c.inflight--;
        }
        noteError(what);
      },
      write(bytes) {
        socket.write(bytes);
      },
    };
    socket.on('data', (chunk: Buffer) => {
      now = performance.now();
      const buf = joinCarry(c.carry, chunk);
      let used: number;
      try {
        used = protocol.parse(buf, sink);
      } catch (err) {
        noteError((err as Error).message);
        socket.destroy();
        return;
      }
      c.carry = used === buf.length ? null : Buffer.from(buf.subarray(used));
      pump(c);
      if (stopping && onIdle !== null && conns.every((x) => x.inflight === 0 || x.closed)) onIdle();
    });
    socket.on('error', (err) => noteError(`connection ${index}: ${err.message}`));
    socket.on('close', () => {
      c.closed = true;
      if (c.inflight > 0) noteError(`connection ${index} closed with ${c.inflight} frames unanswered`);
      if (stopping && onIdle !== null && conns.every((x) => x.inflight === 0 || x.closed)) onIdle();
    });
    const pre = protocol.preamble(index);
    if (pre !== null) socket.write(pre);
    return c;
  }

  for (const c of conns) pump(c);
  await delay(opts.warmupMs);
  const startAcked = acked;
  const startCpu = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  emit({ event: 'window-start' });
  await delay(opts.measureMs);
  measuring = false;
  const msgs = acked - startAcked;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(startCpu);
  emit({ event: 'window-end' });

  stopping = true;
  if (!conns.every((c) => c.inflight === 0 || c.closed)) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, opts.drainTimeoutMs);
      onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  for (const c of conns) c.socket.destroy();
  if (acked !== sent) noteError(`acked ${acked} of ${sent} sent`);
  const bytes = msgs * opts.payloadSize;
  return {
    event: 'result',
    msgs,
    bytes,
    seconds,
    msgsPerSec: msgs / seconds,
    mbPerSec: bytes / seconds / 1e6,
    sent,
    acked,
    errors,
    firstError,
    correct: errors === 0 && acked === sent,
    clientCpuSec: (cpu.user + cpu.system) / 1e6,
    latency: hist.summary(),
    ...(opts.reportPartitions ? { perPartition: Array.from(perPartition) } : {}),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Fills `buf` with reproducible pseudo-random bytes (xorshift32 from `seed`). */
export function fillPattern(buf: Buffer, seed: number): void {
  let x = (seed | 0) || 0x9e3779b9;
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
}

/** Process entry of a load generator: runs the load, prints the JSON lines, sets the exit code. */
export function runLoadMain(opts: LoadOptions, protocol: LoadProtocol): void {
  const emit = (line: object): void => {
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  runLoad(opts, protocol, emit).then(
    (result) => {
      emit(result);
      process.exitCode = result.correct ? 0 : 2;
    },
    (err: unknown) => {
      emit({ event: 'fatal', error: (err as Error).message });
      process.exitCode = 1;
    },
  );
}

/** Reads the options JSON given as the first argument, over `defaults`. */
export function optionsFromArgv<T extends object>(defaults: T): T {
  const arg = process.argv[2];
  if (arg === undefined || arg === '') return defaults;
  return { ...defaults, ...(JSON.parse(arg) as Partial<T>) };
}
