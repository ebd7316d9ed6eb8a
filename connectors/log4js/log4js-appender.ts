/**
 * The application side of the log4js appender. A log call formats the event (layout, JSON) and copies it into a
 * bounded ring in shared memory; a worker thread owns the broker connection and sends from the ring. So a log call
 * never waits for the network, never throws, and the `block` policy can really wait for room on the application's
 * thread while the worker keeps sending. See README.md for the guarantees.
 */
import { hostname } from 'node:os';
import { format } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { AppenderFunction, LayoutsParam, LoggingEvent } from 'log4js';
import { AppenderCounters, allocateCounters } from './appender-counters.js';
import { resolveAppenderOptions, type MetaqAppenderConfig, type ResolvedAppenderOptions } from './appender-options.js';
import { EventRingWriter, allocateRing, type RingMemory } from './event-ring.js';
import { formatMessage } from './message-format.js';

/**
 * What one appender has done so far.
 *
 * @example
 * ```js
 * const { stats } = require('metaq/log4js');
 * for (const s of stats()) if (s.dropped > 0) console.warn(`${s.topic}: ${s.dropped} log events dropped`);
 * ```
 */
export interface MetaqAppenderStats {
  readonly topic: string;
  /** Events in the buffer now (waiting or in flight). */
  readonly buffered: number;
  readonly bufferedBytes: number;
  readonly sent: number;
  readonly dropped: number;
  readonly oversized: number;
  readonly failed: number;
  readonly errors: number;
  readonly lost: number;
  readonly retries: number;
  readonly connected: boolean;
  /** Shut down: these are its final figures. */
  readonly closed: boolean;
}

/** What the worker receives. */
export interface SenderInit {
  readonly options: ResolvedAppenderOptions;
  readonly ring: RingMemory;
  readonly counters: SharedArrayBuffer;
}

/** The message the worker posts once it has flushed and closed its client. */
export interface SenderClosed {
  readonly type: 'closed';
}

/** A log4js appender function with the optional `shutdown` log4js calls from `log4js.shutdown`. */
export type MetaqAppenderFunction = AppenderFunction & { shutdown(done: (error?: Error) => void): void };

type LayoutFunction = (event: LoggingEvent) => string;

/** A worker that died on its own is started again after this long (it resumes at the first unreleased event). */
const RESTART_DELAY_MS = 1_000;
/** Beyond the shutdown deadline, the time the worker gets to answer before it is terminated. */
const SHUTDOWN_GRACE_MS = 1_000;

const live = new Set<MetaqLog4jsAppender>();

/**
 * Diagnostics of the application's thread go out as process warnings: the worker logs with pino, but a pino loaded
 * here could be a second copy of the application's own (tsx loads this file in a namespace of its own), and two
 * copies of pino in one thread break each other.
 */
function warn(message: string): void {
  process.emitWarning(message, { code: 'METAQ_LOG4JS' });
}
/** The final stats of appenders shut down, newest last (bounded: a process may configure log4js again and again). */
const closedStats: MetaqAppenderStats[] = [];
const CLOSED_STATS_KEPT = 16;

/**
 * The stats of every appender of this process: the live ones, then the last ones shut down (final figures,
 * `closed: true`).
 *
 * @example
 * ```js
 * require('metaq/log4js').stats(); // [{ topic: 'app-logs', sent: 1200, dropped: 0, buffered: 3, ... }]
 * ```
 */
export function appenderStats(): MetaqAppenderStats[] {
  return [...[...live].map((a) => a.stats()), ...closedStats];
}

/**
 * log4js's `configure` of an appender module; `workerFile` is the worker's CommonJS entry (index.cjs passes it).
 *
 * @example
 * ```js
 * // index.cjs
 * exports.configure = (config, layouts) => createAppender(config, layouts, join(__dirname, 'worker-entry.cjs'));
 * ```
 */
export function createAppender(config: MetaqAppenderConfig, layouts: LayoutsParam | undefined,
  workerFile: string): MetaqAppenderFunction {
  const options = resolveAppenderOptions(config);
  const layout: LayoutFunction = config.layout !== undefined && layouts !== undefined
    ? layouts.layout(config.layout.type, config.layout as unknown as Parameters<LayoutsParam['layout']>[1])
    : layouts?.messagePassThroughLayout ?? ((e) => format(...(e.data as unknown[])));
  const appender = new MetaqLog4jsAppender(options, layout, workerFile);
  live.add(appender);
  const fn = ((event: LoggingEvent) => appender.append(event)) as MetaqAppenderFunction;
  fn.shutdown = (done) => appender.shutdown(() => {
    if (live.delete(appender)) {
      closedStats.push(appender.stats());
      if (closedStats.length > CLOSED_STATS_KEPT) closedStats.shift();
    }
    done();
  });
  return fn;
}

/** One configured appender: its ring, its counters and its worker. */
class MetaqLog4jsAppender {
  private readonly ring: RingMemory;
  private readonly writer: EventRingWriter;
  private readonly counters: AppenderCounters;
  private readonly countersMemory = allocateCounters();
  private readonly hostJson = JSON.stringify(hostname());
  private worker: Worker | undefined;
  private seq = 0;
  private closed = false;
  /** Set when a block timed out: drop without waiting until the buffer drained to half. */
  private blockSuspended = false;

  constructor(private readonly options: ResolvedAppenderOptions, private readonly layout: LayoutFunction,
    private readonly workerFile: string) {
    this.ring = allocateRing(options.bufferBytes, options.bufferSize);
    this.writer = new EventRingWriter(this.ring, options.batchSize);
    this.counters = new AppenderCounters(this.countersMemory);
    this.startWorker();
  }

  /** The log4js appender function: never throws, never waits on the network. */
  append(event: LoggingEvent): void {
    try {
      if (this.closed) {
        this.counters.add('dropped', 1);
        return;
      }
      const payload = formatMessage(event, this.layout(event), this.hostJson, ++this.seq);
      const key = this.options.partitioner === 'category' ? event.categoryName : '';
      this.write(key, event.level.levelStr, payload);
    } catch {
      this.counters.add('errors', 1);
    }
  }

  private write(key: string, attribute: string, payload: string): void {
    const w = this.writer;
    const r = w.write(key, attribute, payload);
    if (r === 'ok') {
      if (this.blockSuspended && w.count <= this.options.bufferSize / 2 && w.usedBytes <= this.options.bufferBytes / 2) {
        this.blockSuspended = false;
      }
      return;
    }
    if (r === 'oversized') {
      this.counters.add('oversized', 1);
      return;
    }
    if (this.options.overflow === 'block' && !this.blockSuspended) {
      const deadline = performance.now() + this.options.blockTimeoutMs;
      for (let left = this.options.blockTimeoutMs; left > 0; left = deadline - performance.now()) {
        w.waitForRoom(left);
        if (w.write(key, attribute, payload) === 'ok') return;
      }
      this.blockSuspended = true;
    }
    this.counters.add('dropped', 1);
  }

  stats(): MetaqAppenderStats {
    const c = this.counters;
    return {
      topic: this.options.topic,
      buffered: this.writer.count,
      bufferedBytes: this.writer.usedBytes,
      sent: c.get('sent'),
      dropped: c.get('dropped'),
      oversized: c.get('oversized'),
      failed: c.get('failed'),
      errors: c.get('errors'),
      lost: c.get('lost'),
      retries: c.get('retries'),
      connected: c.get('connected') === 1,
      closed: this.closed,
    };
  }

  /**
   * Delivers what is buffered within `shutdownTimeoutMs`, then stops the worker; what is still buffered then is
   * counted as `lost` and logged. Calls `done` once, without an error: shutdown must not fail the application.
   */
  shutdown(done: () => void): void {
    if (this.closed) {
      done();
      return;
    }
    this.closed = true;
    const worker = this.worker;
    if (worker === undefined) {
      this.finish(done);
      return;
    }
    worker.ref(); // the process waits for the flush
    this.writer.close();
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', finish);
      void worker.terminate().finally(() => this.finish(done));
    };
    const onMessage = (m: SenderClosed): void => {
      if (m.type === 'closed') finish();
    };
    const timer = setTimeout(finish, this.options.shutdownTimeoutMs + SHUTDOWN_GRACE_MS);
    worker.on('message', onMessage);
    worker.once('exit', finish);
  }

  private finish(done: () => void): void {
    this.worker = undefined;
    const lost = this.writer.count;
    if (lost > 0) {
      this.counters.add('lost', lost);
      warn(`${lost} log events still buffered at shutdown were not delivered to topic ${this.options.topic}`);
    }
    this.counters.set('connected', 0);
    done();
  }

  /** Starts the sender; a worker that dies by itself is started again (the ring keeps what it had not sent). */
  private startWorker(): void {
    const init: SenderInit = { options: this.options, ring: this.ring, counters: this.countersMemory };
    const worker = new Worker(this.workerFile, { workerData: init });
    // An application that exits without log4js.shutdown is not held back by its logger.
    worker.unref();
    worker.on('error', (err) => warn(`the sender of topic ${this.options.topic} failed (restarting it): ${err.stack ?? err}`));
    worker.on('exit', () => {
      if (this.closed || this.worker !== worker) return;
      this.counters.set('connected', 0);
      this.worker = undefined;
      setTimeout(() => {
        if (!this.closed) this.startWorker();
      }, RESTART_DELAY_MS).unref();
    });
    this.worker = worker;
  }
}
