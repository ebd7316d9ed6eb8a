/**
 * Plays a Storm worker's ShellSpout against a multilang subprocess, step by step, as strictly as Storm does and a
 * little more (Storm attributes stray output to the next command; the driver calls it a violation).
 *
 * Writes like Storm's JsonSerializer (json-smart): objects in Java HashMap key order, `/` escaped as `\/`, every
 * frame followed by a line `end`; the handshake `{pidDir, conf, context}` first, then `{"command":…,"id":…}` per call,
 * and the task-id array `[4,5]` after every emit that does not say `need_task_ids: false`.
 *
 * Checks: the first frame out is `{"pid":N}` with the child's pid and `<pidDir>/<pid>` exists; a reply holds only
 * sync, log, error, emit or metrics (a metric name kills the worker: nothing is registered) and well-typed fields;
 * every command ends with a sync within `commandTimeoutMs` (Storm's topology.subprocess.timeout.secs); nothing is
 * written between a sync and the next command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { waitFor } from './wait-for.js';

/** Storm's conf as a worker sends it (a realistic subset of defaults.yaml plus a topology's settings). */
export const STORM_CONF: Readonly<Record<string, unknown>> = {
  'topology.name': 'metaq-word-count',
  'storm.id': 'metaq-word-count-1-1700000000',
  'storm.local.dir': '/var/storm/local',
  'storm.zookeeper.servers': ['localhost'],
  'storm.zookeeper.port': 2181,
  'topology.message.timeout.secs': 30,
  'topology.max.spout.pending': null,
  'topology.multilang.serializer': 'org.apache.storm.multilang.JsonSerializer',
  'supervisor.worker.timeout.secs': 30,
  'topology.debug': false,
  'topology.workers': 1,
  'topology.acker.executors': null,
  'topology.stats.sample.rate': 0.05,
  'topology.kryo.register': null,
  'topology.environment': null,
  'dev.zookeeper.path': '/tmp/dev-storm-zookeeper',
};

/** The TopologyContext of a ShellSpout task 2 feeding a bolt. */
export const STORM_CONTEXT: Readonly<Record<string, unknown>> = {
  'task->component': { 1: '__acker', 2: 'metaq-spout', 3: 'split', 4: 'count', 5: 'count' },
  taskid: 2,
  componentid: 'metaq-spout',
  streams: ['default'],
  'stream->outputfields': { default: ['value'] },
  'stream->target->grouping': { default: { split: { type: 'SHUFFLE' } } },
  'source->stream->grouping': {},
  'source->stream->fields': {},
};

export interface StormDriverOptions {
  /** Where the subprocess must create its pid file. */
  readonly pidDir: string;
  /** Merged over {@link STORM_CONF}. */
  readonly conf?: Readonly<Record<string, unknown>>;
  /** Default {@link STORM_CONTEXT}. */
  readonly context?: Readonly<Record<string, unknown>>;
  /** A command not answered by a sync within this long fails (Storm kills the worker); default 10 000 ms. */
  readonly commandTimeoutMs?: number;
  /** Written back after an emit that needs task ids; default [4, 5]. */
  readonly taskIds?: readonly number[];
}

export interface Emit {
  readonly id: string | number | undefined;
  readonly tuple: unknown[];
  readonly stream: string;
}

export interface Reply {
  readonly emits: Emit[];
  readonly logs: Array<{ readonly msg: string; readonly level: number | undefined }>;
  readonly errors: string[];
  readonly ms: number;
}

/** The subprocess broke the protocol the way Storm would die of (or we are stricter about). */
export class StormProtocolViolation extends Error {}

/** The subprocess's stdout ended before a sync; `errors` holds the error frames it sent first. */
export class SubprocessGoneError extends Error {
  constructor(message: string, readonly errors: string[], readonly frames: unknown[]) {
    super(message);
  }
}

const REPLY_COMMANDS = new Set(['sync', 'log', 'error', 'emit', 'metrics']);

export class StormDriver {
  /** Commands answered so far. */
  commands = 0;
  private readonly frames: unknown[] = [];
  private partialLine = '';
  private frameLines: string[] = [];
  private eof = false;
  private wake: (() => void) | undefined;
  private inCommand = false;
  private stray: unknown[] = [];
  private stderrText = '';
  private pidValue = -1;

  private constructor(private readonly stdin: Writable, stdout: Readable, private readonly child: ChildProcess | undefined,
    private readonly options: StormDriverOptions) {
    stdout.setEncoding('utf8');
    stdout.on('data', (text: string) => this.receive(text));
    stdout.on('end', () => {
      this.eof = true;
      this.wake?.();
    });
    // A dead subprocess: Storm sees a broken pipe; the driver sees EOF on stdout, so ignore EPIPE here.
    stdin.on('error', () => undefined);
  }

  /** Spawns `command args` and does the handshake. */
  static async spawn(command: string, args: readonly string[], options: StormDriverOptions & { env?: NodeJS.ProcessEnv }):
  Promise<StormDriver> {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    const d = new StormDriver(child.stdin!, child.stdout!, child, options);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => { d.stderrText = (d.stderrText + t).slice(-64 * 1024); });
    await d.handshake(child.pid!);
    return d;
  }

  /** Drives a spout over an in-process stream pair (its stdin, its stdout); `pid` is what it reports. */
  static async over(stdin: Writable, stdout: Readable, pid: number, options: StormDriverOptions): Promise<StormDriver> {
    const d = new StormDriver(stdin, stdout, undefined, options);
    await d.handshake(pid);
    return d;
  }

  get pid(): number {
    return this.pidValue;
  }

  /** What the subprocess wrote to stderr (the last 64 KiB). */
  get stderr(): string {
    return this.stderrText;
  }

  next(): Promise<Reply> {
    return this.send('next', '');
  }

  ack(id: string | number): Promise<Reply> {
    return this.send('ack', id);
  }

  fail(id: string | number): Promise<Reply> {
    return this.send('fail', id);
  }

  activate(): Promise<Reply> {
    return this.send('activate', '');
  }

  deactivate(): Promise<Reply> {
    return this.send('deactivate', '');
  }

  /** Sends one command as ShellSpout does and reads its reply up to the sync, checking every frame. */
  async send(command: string, id: string | number): Promise<Reply> {
    if (this.stray.length > 0) {
      throw new StormProtocolViolation(`frames written outside a command: ${JSON.stringify(this.stray).slice(0, 300)}`);
    }
    const started = Date.now();
    this.inCommand = true;
    try {
      this.write(javaJson({ command, id }));
      const reply: Reply = { emits: [], logs: [], errors: [], ms: 0 };
      const seen: unknown[] = [];
      for (;;) {
        const frame = await this.frame(started + (this.options.commandTimeoutMs ?? 10_000), command, seen, reply.errors);
        seen.push(frame);
        if (this.check(frame, reply)) break;
      }
      // Anything read after the sync was written outside a command.
      this.stray.push(...this.frames.splice(0));
      this.commands++;
      return { ...reply, ms: Date.now() - started };
    } finally {
      this.inCommand = false;
    }
  }

  /** Writes raw text to the subprocess's stdin (e.g. a task-id frame nobody asked for). */
  writeRaw(text: string): void {
    this.stdin.write(text);
  }

  /** Ends the subprocess's stdin (Storm's worker going away). */
  endInput(): void {
    this.stdin.end();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  /** The subprocess's exit: its code, or the signal that ended it. */
  exited(): Promise<number | NodeJS.Signals> {
    const c = this.child;
    if (c === undefined) return Promise.reject(new Error('no subprocess'));
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.signalCode ?? c.exitCode!);
    return new Promise((resolve) => c.once('exit', (code, signal) => resolve(signal ?? code!)));
  }

  private async handshake(expectedPid: number): Promise<void> {
    this.write(javaJson({ pidDir: this.options.pidDir, conf: { ...STORM_CONF, ...this.options.conf },
      context: this.options.context ?? STORM_CONTEXT }));
    const first = await this.frame(Date.now() + (this.options.commandTimeoutMs ?? 10_000), 'handshake', [], []);
    if (!isObject(first) || typeof first.pid !== 'number' || !Number.isInteger(first.pid)) {
      throw new StormProtocolViolation(`the first frame must be {"pid":N}, got ${JSON.stringify(first)}`);
    }
    if (first.pid !== expectedPid) throw new StormProtocolViolation(`pid ${first.pid} reported, the process is ${expectedPid}`);
    this.pidValue = first.pid;
    this.stray.push(...this.frames.splice(0));
    // storm.py writes the file just after the pid: allow it a moment.
    const file = join(this.options.pidDir, String(first.pid));
    await waitFor(() => existsSync(file), { timeoutMs: 2_000, what: `the pid file ${file}` });
  }

  /** Validates a reply frame; true at the sync. */
  private check(frame: unknown, reply: Reply): boolean {
    if (!isObject(frame) || typeof frame.command !== 'string' || !REPLY_COMMANDS.has(frame.command)) {
      throw new StormProtocolViolation(`not a spout reply frame: ${JSON.stringify(frame).slice(0, 200)}`);
    }
    const f = frame;
    const bad = (why: string): never => { throw new StormProtocolViolation(`${why}: ${JSON.stringify(f).slice(0, 200)}`); };
    switch (f.command) {
      case 'sync':
        return true;
      case 'log':
        if (typeof f.msg !== 'string') bad('a log without msg');
        if (f.level !== undefined && !(Number.isInteger(f.level) && (f.level as number) >= 0 && (f.level as number) <= 4)) {
          bad('a log level outside 0..4');
        }
        reply.logs.push({ msg: f.msg as string, level: f.level as number | undefined });
        return false;
      case 'error':
        if (typeof f.msg !== 'string') bad('an error without msg');
        reply.errors.push(f.msg as string);
        return false;
      case 'metrics':
        return bad('a metrics call (no metric is registered: Storm would kill the worker)');
      default:
        break;
    }
    if (!Array.isArray(f.tuple)) bad('an emit without a tuple array');
    if (f.id !== undefined && f.id !== null && typeof f.id !== 'string' && typeof f.id !== 'number') bad('an emit id of a bad type');
    if (f.stream !== undefined && typeof f.stream !== 'string') bad('an emit stream that is not a string');
    if (f.task !== undefined && !Number.isInteger(f.task)) bad('an emit task that is not an integer');
    if (f.need_task_ids !== undefined && typeof f.need_task_ids !== 'boolean') bad('need_task_ids not a boolean');
    if (f.task === undefined && f.need_task_ids !== false) this.write(javaJson(this.options.taskIds ?? [4, 5]));
    reply.emits.push({ id: f.id as string | number | undefined, tuple: f.tuple as unknown[], stream: (f.stream as string | undefined) ?? 'default' });
    return false;
  }

  private async frame(deadline: number, what: string, seen: unknown[], errors: string[]): Promise<unknown> {
    while (this.frames.length === 0) {
      if (this.eof) {
        throw new SubprocessGoneError(`stdout ended during ${what} after ${JSON.stringify(seen).slice(0, 300)}; ` +
          `stderr: ${this.stderrText.slice(-2000)}`, errors, seen);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new StormProtocolViolation(`no sync for ${what} in time; stderr: ${this.stderrText.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.frames.shift();
  }

  /** JsonSerializer.readString: lines up to a line `end`, joined with LF. */
  private receive(text: string): void {
    const lines = (this.partialLine + text).split('\n');
    this.partialLine = lines.pop()!;
    for (const line of lines) {
      if (line !== 'end') {
        this.frameLines.push(line);
        continue;
      }
      const body = this.frameLines.join('\n');
      this.frameLines = [];
      let frame: unknown;
      try {
        frame = JSON.parse(body);
      } catch {
        frame = { unparsable: body };
      }
      if (this.pidValue !== -1 && !this.inCommand) this.stray.push(frame);
      else this.frames.push(frame);
    }
    this.wake?.();
  }

  private write(text: string): void {
    this.stdin.write(`${text}\nend\n`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** JSON as json-smart writes it from Java maps: HashMap key order, `/` and some Unicode ranges escaped. */
export function javaJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return javaString(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(javaJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${javaHashMapOrder(Object.keys(o)).map((k) => `${javaString(k)}:${javaJson(o[k])}`).join(',')}}`;
}

function javaString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '/') out += '\\/';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0x2000 && c <= 0x20ff)) {
      out += `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

/**
 * Iteration order of a java.util.HashMap holding these keys (inserted in this order): by bucket
 * `(h ^ h >>> 16) & (capacity - 1)`, then insertion order. Integer-like keys hash as Integers (task->component).
 */
export function javaHashMapOrder(keys: readonly string[]): string[] {
  let capacity = 16;
  while (keys.length > capacity * 0.75) capacity *= 2;
  const bucket = (k: string): number => {
    let h = 0;
    if (/^-?\d{1,9}$/.test(k)) h = Number(k) | 0;
    else for (let i = 0; i < k.length; i++) h = (Math.imul(31, h) + k.charCodeAt(i)) | 0;
    return (h ^ (h >>> 16)) & (capacity - 1);
  };
  return keys.map((k, i) => ({ k, i, b: bucket(k) })).sort((a, b) => a.b - b.b || a.i - b.i).map((e) => e.k);
}
