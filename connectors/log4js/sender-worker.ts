/**
 * The sender: a worker thread that owns the broker connection. It connects (retrying with backoff while the broker
 * is down), then sends the ring's events in batches: a batch leaves when `batchSize` events wait or `lingerMs` after
 * the first one. A batch's room in the ring is given back only when every event of it was acked or refused for good,
 * so the buffer bound covers what is in flight. Retriable failures (connection lost, timeout) resend the failed
 * events of the batch, in order, after a backoff; non-retriable ones are counted as `failed` and logged.
 *
 * Shutdown (the ring's state turns to closing): send everything, lingering no more, until the ring is empty or
 * `shutdownTimeoutMs` passed; close the client; post `{ type: 'closed' }`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import { MetaqError, createClient, type MetaqClient, type Producer, type ProducerRecord } from '../../sdk/index.js';
import { AppenderCounters } from './appender-counters.js';
import { EventRingReader, type RingEntry } from './event-ring.js';
import type { SenderClosed, SenderInit } from './log4js-appender.js';

/** At most one warning per this period for a repeating failure. */
const WARN_EVERY_MS = 5_000;

const init = workerData as SenderInit;
const o = init.options;
const ring = new EventRingReader(init.ring);
const counters = new AppenderCounters(init.counters);
const logger = pino({ name: 'metaq-log4js', level: o.logLevel }, pino.destination({ fd: 2, sync: true }));
let deadline = Infinity;
let lastWarn = 0;
let droppedReported = 0;

void run().catch((err: unknown) => {
  logger.error({ err, topic: o.topic }, 'the metaq log4js sender stopped');
  throw err;
});

async function run(): Promise<void> {
  const client = await connect();
  if (client !== undefined) {
    const producer = client.producer<Buffer>({
      partitioner: o.partitioner === 'category' ? 'hash' : 'round-robin',
      maxInFlight: o.batchSize,
      sendTimeoutMs: o.sendTimeoutMs,
    });
    await pump(producer);
    await Promise.race([client.close(), delay(Math.max(0, shutdownDeadline() - Date.now()))]);
    counters.set('connected', 0);
  }
  reportDrops(true);
  parentPort!.postMessage({ type: 'closed' } satisfies SenderClosed);
}

/** A connected client, or undefined when shutdown's deadline passed first. */
async function connect(): Promise<MetaqClient | undefined> {
  for (let attempt = 0; ; attempt++) {
    if (closingExpired()) return undefined;
    try {
      const client = await createClient({
        ...(o.serverUrl === undefined ? {} : { serverUrl: o.serverUrl }),
        ...(o.zkConnect === undefined ? {} : { zkConnect: o.zkConnect }),
        ...(o.zkRoot === undefined ? {} : { zkRoot: o.zkRoot }),
        connectTimeoutMs: o.sendTimeoutMs,
        requestTimeoutMs: o.sendTimeoutMs,
        reconnect: { initialDelayMs: o.reconnectInitialMs, maxDelayMs: o.reconnectMaxMs },
        logger,
      });
      counters.set('connected', 1);
      if (attempt > 0) logger.info({ topic: o.topic, attempts: attempt + 1 }, 'connected to the broker');
      return client;
    } catch (err) {
      warn({ err, topic: o.topic, buffered: ring.count }, 'cannot reach the broker; log events are buffered');
      reportDrops(false);
      await pause(backoff(attempt));
    }
  }
}

/** Sends batches until shutdown emptied the ring or its deadline passed. */
async function pump(producer: Producer<Buffer>): Promise<void> {
  let firstSeen: number | undefined;
  for (;;) {
    const seen = ring.writes;
    const n = ring.available;
    shutdownDeadline(); // starts shutdown's clock the first time the ring is seen closing
    if (n === 0) {
      if (ring.closing) return;
      await ring.waitForWrite(seen, WARN_EVERY_MS);
      reportDrops(false);
      continue;
    }
    if (n < o.batchSize && !ring.closing) {
      const now = Date.now();
      firstSeen ??= now;
      if (now - firstSeen < o.lingerMs) {
        await ring.waitForWrite(seen, o.lingerMs - (now - firstSeen));
        continue;
      }
    }
    firstSeen = undefined;
    const batch: RingEntry[] = [];
    for (let e = ring.next(); e !== undefined; e = batch.length < o.batchSize ? ring.next() : undefined) batch.push(e);
    if (!await sendBatch(producer, batch)) return; // given up at the deadline: the batch stays counted as buffered
    ring.release();
    reportDrops(false);
  }
}

/** Sends one batch until every event was acked or refused for good; false when shutdown's deadline passed first. */
async function sendBatch(producer: Producer<Buffer>, batch: RingEntry[]): Promise<boolean> {
  let pending = batch;
  for (let attempt = 0; ; attempt++) {
    const results = await Promise.allSettled(pending.map((e) => producer.send(toRecord(e))));
    const retry: RingEntry[] = [];
    let sent = 0;
    let failed = 0;
    let lastError: unknown;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.status === 'fulfilled') {
        sent++;
      } else if (r.reason instanceof MetaqError && r.reason.retriable) {
        retry.push(pending[i]!);
        lastError = r.reason;
      } else {
        failed++;
        logger.error({ err: r.reason, topic: o.topic }, 'the broker refused a log event; it is dropped');
      }
    }
    counters.add('sent', sent);
    if (failed > 0) counters.add('failed', failed);
    if (retry.length === 0) return true;
    counters.add('retries', retry.length);
    warn({ err: lastError, topic: o.topic, events: retry.length }, 'sending log events failed; retrying');
    if (closingExpired()) return false;
    pending = retry;
    await pause(backoff(attempt));
  }
}

function toRecord(e: RingEntry): ProducerRecord<Buffer> {
  if (typeof o.partitioner === 'number') return { topic: o.topic, value: e.value, attribute: e.attribute, partition: o.partitioner };
  if (o.partitioner === 'category') return { topic: o.topic, value: e.value, attribute: e.attribute, key: e.key };
  return { topic: o.topic, value: e.value, attribute: e.attribute };
}

/** Reconnect and retry delay: doubling from reconnectInitialMs up to reconnectMaxMs, ±20% jitter. */
function backoff(attempt: number): number {
  const base = Math.min(o.reconnectMaxMs, o.reconnectInitialMs * 2 ** Math.min(attempt, 30));
  return base * (0.8 + Math.random() * 0.4);
}

/** Waits `ms`; before shutdown a shutdown wakes it, during shutdown it ends at the deadline. */
async function pause(ms: number): Promise<void> {
  if (!ring.closing) {
    await ring.sleep(ms);
    if (!ring.closing) return;
  }
  await delay(Math.max(0, Math.min(ms, shutdownDeadline() - Date.now())));
}

/** Shutdown's deadline: Infinity until the ring is seen closing, then `shutdownTimeoutMs` from that first sight. */
function shutdownDeadline(): number {
  if (deadline === Infinity && ring.closing) deadline = Date.now() + o.shutdownTimeoutMs;
  return deadline;
}

function closingExpired(): boolean {
  return Date.now() >= shutdownDeadline();
}

function warn(fields: Record<string, unknown>, msg: string): void {
  const now = Date.now();
  if (now - lastWarn < WARN_EVERY_MS) return;
  lastWarn = now;
  logger.warn(fields, msg);
}

/** Logs the events dropped on a full buffer since the last report (at most once per WARN_EVERY_MS unless `now`). */
function reportDrops(now: boolean): void {
  const dropped = counters.get('dropped');
  if (dropped === droppedReported) return;
  if (!now && Date.now() - lastWarn < WARN_EVERY_MS) return;
  lastWarn = Date.now();
  logger.warn({ topic: o.topic, dropped: dropped - droppedReported, droppedTotal: dropped },
    'the log buffer was full: events were dropped');
  droppedReported = dropped;
}
