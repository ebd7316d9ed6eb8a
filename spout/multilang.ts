/**
 * Storm's multilang protocol, spout side (ShellSpout), over any Readable/Writable pair: `metaq spout` runs it on
 * stdin/stdout so a Storm topology can use a {@link MetaqSpout} as a ShellSpout.
 *
 * Wire grammar (both directions, UTF-8):
 * ```
 * frame    = json-lines "end" LF        ; one JSON value, possibly over several lines (joined with LF)
 * stdin    = handshake *(command / task-ids)
 * handshake= {"conf":{…},"pidDir":"/path","context":{…}}        ; key order is a Java HashMap's, "/" may be "\/"
 * command  = {"command":"next"|"ack"|"fail"|"activate"|"deactivate","id":<id or "">}
 * task-ids = [4,5]                                             ; Storm's answer to an emit without need_task_ids:false
 * stdout   = {"pid":N}  *( *(emit / log / error) {"command":"sync"} )
 * emit     = {"command":"emit","id":"0-1@340","tuple":[…],"need_task_ids":false}
 * log      = {"command":"log","msg":"…","level":0..4}          ; trace, debug, info, warn, error
 * error    = {"command":"error","msg":"…"}                     ; Storm reports it; we then exit without sync
 * ```
 *
 * What it promises: the first frame out is the pid, and the empty file `<pidDir>/<pid>` exists before it is sent;
 * every command, activate and deactivate included, is answered by frames ending with exactly one sync (ShellSpout
 * blocks until it sees one); stdout carries nothing else (logs go to stderr, and to Storm only as `log` frames inside
 * a reply); a `next` with nothing to emit waits at most `idleWaitMs` for a tuple before its sync, because Storm does
 * not sleep between calls; a consumer failure is answered with `error` and the run ends with status 1, so Storm
 * restarts the worker, which resumes from the committed offsets.
 *
 * @see https://storm.apache.org/releases/current/Multilang-protocol.html
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { partitionName, ProtocolError, type Message } from '../sdk/index.js';
import type { MetaqSpout } from './metaq-spout.js';

/** Storm's log levels in a `log` frame. */
export const StormLogLevels = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 } as const;
export type StormLogLevel = (typeof StormLogLevels)[keyof typeof StormLogLevels];

/** How a message becomes a tuple's values (`--scheme`). */
export const Schemes = {
  /** `[value as UTF-8]` */
  string: (m: Message) => [m.payload.toString('utf8')],
  /** `JSON.parse(value)`: an array is the values, anything else one value. */
  json: (m: Message) => {
    const v: unknown = JSON.parse(m.payload.toString('utf8'));
    return Array.isArray(v) ? v : [v];
  },
  /** `[value as base64]`, for binary payloads. */
  base64: (m: Message) => [m.payload.toString('base64')],
  /** `[value as UTF-8, topic, partition name, offset, attribute]` */
  message: (m: Message) => [m.payload.toString('utf8'), m.topic, partitionName(m.partition), m.offset, m.attribute],
} as const satisfies Record<string, (m: Message) => unknown[]>;
export type SchemeName = keyof typeof Schemes;

/** One frame: JSON and a line `end`. */
export function encodeFrame(value: unknown): string {
  return `${JSON.stringify(value)}\nend\n`;
}

const SYNC = encodeFrame({ command: 'sync' });

/**
 * Splits text into frames: lines are collected until a line `end`, joined with LF and parsed as JSON. Text may arrive
 * in pieces of any size. Throws a ProtocolError (with the frame's start) for an empty or unparsable frame.
 */
export class FrameDecoder {
  private partial = '';
  private lines: string[] = [];

  /** The frames completed by `text`, in order. */
  push(text: string): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      let line = this.partial === '' ? text.slice(start, nl) : this.partial + text.slice(start, nl);
      this.partial = '';
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === 'end') out.push(this.complete());
      else this.lines.push(line);
    }
    if (start < text.length) this.partial += text.slice(start);
    return out;
  }

  /** Text of an unfinished frame at the end of input ('' if none). */
  get rest(): string {
    return [...this.lines, this.partial].join('\n').trim();
  }

  private complete(): unknown {
    const text = this.lines.join('\n');
    this.lines = [];
    if (text.trim() === '') throw new ProtocolError('empty multilang frame', 'frame', '');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new ProtocolError(`unparsable multilang frame: ${(err as Error).message}`, 'frame', text.slice(0, 80));
    }
  }
}

/**
 * Spout-side events worth Storm's log, held until the next reply (Storm reads stdout only while it waits for a sync).
 * Also a pino destination: give it to `pino.multistream` and the SDK's warnings become `log` frames.
 */
export class StormLog {
  private frames: string[] = [];
  private dropped = 0;

  constructor(private readonly limit = 256) {}

  push(level: StormLogLevel, msg: string): void {
    if (this.frames.length >= this.limit) {
      this.dropped++;
      return;
    }
    this.frames.push(encodeFrame({ command: 'log', msg: msg.length > 4000 ? `${msg.slice(0, 4000)}…` : msg, level }));
  }

  /** pino destination: one JSON line per event. */
  write(line: string): void {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.push(StormLogLevels.info, line.trim());
      return;
    }
    const { level, msg, time: _t, pid: _p, hostname: _h, err, ...context } = e;
    const n = typeof level === 'number' ? level : 30;
    const stormLevel = n <= 10 ? 0 : n <= 20 ? 1 : n <= 30 ? 2 : n <= 40 ? 3 : 4;
    const why = err !== null && typeof err === 'object' && 'message' in err ? ` (${String(err.message)})` : '';
    const ctx = Object.keys(context).length === 0 ? '' : ` ${JSON.stringify(context)}`;
    this.push(stormLevel as StormLogLevel, `${String(msg ?? '')}${why}${ctx}`);
  }

  /** The held frames (and a note of what was dropped), emptied. */
  take(): string {
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.frames.push(encodeFrame({ command: 'log', msg: `${n} log events dropped (more than ${this.limit} between commands)`, level: 3 }));
    }
    if (this.frames.length === 0) return '';
    const out = this.frames.join('');
    this.frames = [];
    return out;
  }
}

/** The handshake's `conf`: Storm's topology configuration. */
export type StormConf = Readonly<Record<string, unknown>>;

/**
 * Options of {@link MultilangSpout}.
 *
 * @example
 * ```ts
 * const opts: MultilangSpoutOptions = { input: process.stdin, output: process.stdout, makeSpout: (conf) => spoutFor(conf) };
 * ```
 */
export interface MultilangSpoutOptions {
  /** Storm's side: frames from the worker (stdin). */
  readonly input: Readable;
  /** Frames to the worker (stdout). */
  readonly output: Writable;
  /** Makes the spout once the handshake's conf is known (e.g. `topology.max.spout.pending` as maxPending). */
  readonly makeSpout: (conf: StormConf) => MetaqSpout;
  /** Tuples emitted per `next` at most; default 1 (Storm's own spouts emit one). */
  readonly batch?: number;
  /** How long a `next` with nothing to emit waits for a tuple before its sync; default 50 ms. */
  readonly idleWaitMs?: number;
  /** The pid reported and named in the pid file; default process.pid. */
  readonly pid?: number;
  /** Events to send to Storm's log; default: a StormLog of our own. */
  readonly stormLog?: StormLog;
  /** For stderr. */
  readonly logger: Logger;
}

const Exit = { Ok: 0, Failed: 1 } as const;
const FAILED_CLOSE_DEADLINE_MS = 5_000;

/**
 * Runs the ShellSpout protocol until the input ends or {@link stop} is called (then closes the spout, committing what
 * was acked, and resolves 0), or until the spout fails (answers `error`, closes the spout, resolves 1).
 *
 * @example
 * ```ts
 * const ml = new MultilangSpout({ input: process.stdin, output: process.stdout, logger,
 *   makeSpout: (conf) => new MetaqSpout({ client, topic, group, maxPending: Number(conf['topology.max.spout.pending'] ?? 1000) }) });
 * process.once('SIGTERM', () => ml.stop());
 * process.exitCode = await ml.run();
 * ```
 */
export class MultilangSpout {
  private readonly batch: number;
  private idleWaitMs: number;
  private readonly stormLog: StormLog;
  private readonly decoder = new FrameDecoder();
  private readonly queue: unknown[] = [];
  private waiting: (() => void) | undefined;
  /** stop() was called: no more commands are handled. */
  private stopped = false;
  /** The input ended: the frames received are still handled. */
  private inputDone = false;
  private inputError: unknown;
  private spout: MetaqSpout | undefined;
  private opened: Promise<void> | undefined;
  /** The pid was sent: Storm reads frames from now on (before it, anything but the pid breaks the handshake). */
  private pidSent = false;

  constructor(private readonly options: MultilangSpoutOptions) {
    this.batch = options.batch ?? 1;
    this.idleWaitMs = options.idleWaitMs ?? 50;
    this.stormLog = options.stormLog ?? new StormLog();
  }

  /** Ends the run after the command in hand; frames not yet handled are dropped. */
  stop(): void {
    this.stopped = true;
    this.wakeReader();
  }

  async run(): Promise<number> {
    const { input, output, logger } = this.options;
    input.setEncoding('utf8');
    input.on('data', (text: string) => this.receive(text));
    input.once('end', () => {
      this.inputDone = true;
      this.wakeReader();
    });
    input.once('error', (err: unknown) => this.fatalInput(err));
    output.on('error', (err: unknown) => {
      logger.warn({ err }, 'multilang: stdout closed (the worker is gone)');
      this.stop();
    });
    try {
      const handshake = await this.nextFrame();
      if (handshake === undefined) return Exit.Ok;
      await this.handshake(handshake);
      for (let frame = await this.nextFrame(); frame !== undefined; frame = await this.nextFrame()) {
        await this.handle(frame);
      }
      if (this.inputError !== undefined) throw this.inputError;
      if (this.decoder.rest !== '') logger.warn({ rest: this.decoder.rest.slice(0, 80) }, 'multilang: input ended inside a frame');
      await this.spout?.close();
      return Exit.Ok;
    } catch (err) {
      return this.fail(err);
    } finally {
      input.pause();
    }
  }

  private async handshake(frame: unknown): Promise<void> {
    if (!isObject(frame) || typeof frame.pidDir !== 'string' || !isObject(frame.conf)) {
      throw new ProtocolError('the first frame is not a handshake with pidDir and conf', 'handshake',
        JSON.stringify(frame).slice(0, 80));
    }
    const conf = frame.conf;
    const pid = this.options.pid ?? process.pid;
    // storm.js's order: the file first, so the pid Storm learns always names an existing file.
    await writeFile(join(frame.pidDir, String(pid)), '');
    await this.write(encodeFrame({ pid }));
    this.pidSent = true;
    // Storm kills a subprocess silent for this long during a command: never wait near it.
    const timeoutSecs = Number(conf['topology.subprocess.timeout.secs'] ?? conf['supervisor.worker.timeout.secs']);
    if (Number.isFinite(timeoutSecs) && timeoutSecs > 0) this.idleWaitMs = Math.min(this.idleWaitMs, timeoutSecs * 100);
    // A spout that cannot be made or opened is reported in answer to the first command (Storm reads only then).
    try {
      const spout = this.options.makeSpout(conf);
      this.spout = spout;
      this.opened = spout.open().then(() => {
        this.stormLog.push(StormLogLevels.info, `metaq spout open: topic ${spout.topic}, group ${spout.group}, ` +
          `maxPending ${spout.maxPending}, maxReplays ${spout.maxReplays}`);
      });
    } catch (err) {
      this.opened = Promise.reject(err);
    }
    this.opened.catch(() => undefined);
  }

  private async handle(frame: unknown): Promise<void> {
    // Storm writes task ids back after an emit that did not say need_task_ids:false (old workers always do).
    if (Array.isArray(frame)) return;
    if (!isObject(frame) || typeof frame.command !== 'string') {
      throw new ProtocolError('a frame that is neither a command nor task ids', 'command', JSON.stringify(frame).slice(0, 80));
    }
    await this.opened;
    const spout = this.spout!;
    let reply = '';
    switch (frame.command) {
      case 'next':
        reply = await this.next(spout);
        break;
      case 'ack':
        spout.ack(String(frame.id));
        break;
      case 'fail':
        spout.fail(String(frame.id), new Error('failed by Storm'));
        break;
      case 'activate':
        spout.activate();
        break;
      case 'deactivate':
        spout.deactivate();
        break;
      default:
        this.stormLog.push(StormLogLevels.warn, `metaq spout: unknown command ${JSON.stringify(frame.command)} ignored`);
    }
    await this.write(reply + this.stormLog.take() + SYNC);
  }

  /** Emits up to `batch` tuples; with none ready, waits up to idleWaitMs for one. */
  private async next(spout: MetaqSpout): Promise<string> {
    let out = this.emitReady(spout);
    if (out === '' && !this.stopped) {
      await spout.ready(this.idleWaitMs);
      out = this.emitReady(spout);
    }
    return out;
  }

  private emitReady(spout: MetaqSpout): string {
    let out = '';
    for (let i = 0; i < this.batch; i++) {
      const t = spout.nextTuple();
      if (t === undefined) break;
      out += encodeFrame({ command: 'emit', id: t.id, tuple: t.values, need_task_ids: false });
    }
    return out;
  }

  /** Tells Storm (error and log frames, no sync: the worker stops on it), closes the spout; resolves 1. */
  private async fail(err: unknown): Promise<number> {
    const msg = err instanceof Error ? err.message : String(err);
    this.options.logger.error({ err }, 'metaq spout failed');
    if (this.pidSent) {
      this.stormLog.push(StormLogLevels.error, `metaq spout failed: ${msg}`);
      await this.write(this.stormLog.take() + encodeFrame({ command: 'error', msg: `metaq spout failed: ${msg}` }));
    }
    // The consumer failed: its close may not finish; what was acked is committed if it does.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.spout?.close().catch((closeErr: unknown) =>
        this.options.logger.warn({ err: closeErr }, 'metaq spout close after a failure failed')),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, FAILED_CLOSE_DEADLINE_MS); }),
    ]);
    clearTimeout(timer);
    return Exit.Failed;
  }

  private receive(text: string): void {
    try {
      for (const f of this.decoder.push(text)) this.queue.push(f);
    } catch (err) {
      this.fatalInput(err);
      return;
    }
    this.wakeReader();
  }

  private fatalInput(err: unknown): void {
    this.inputError ??= err;
    this.stop();
  }

  /** The next frame, or undefined once the input ended (and its frames were taken) or the run was stopped. */
  private async nextFrame(): Promise<unknown> {
    while (this.queue.length === 0 && !this.stopped && !this.inputDone) {
      await new Promise<void>((resolve) => { this.waiting = resolve; });
    }
    if (this.stopped) return undefined;
    return this.queue.shift();
  }

  private wakeReader(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  private write(text: string): Promise<void> {
    const output = this.options.output;
    if (output.writableEnded || output.destroyed) return Promise.resolve();
    if (output.write(text)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        output.off('drain', done);
        output.off('close', done);
        resolve();
      };
      output.on('drain', done);
      output.on('close', done);
    });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
