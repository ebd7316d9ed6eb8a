/**
 * The log4js appender end to end: a plain CommonJS application run by `node` (no tsx) loads it by name
 * (`type: 'metaq/log4js'`) from a real log4js config, against a real broker. `metaq` is made resolvable the way an
 * install would (a `node_modules/metaq` link, found through NODE_PATH).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import log4js, { type AppenderModule } from 'log4js';
import { lastValueFrom, toArray } from 'rxjs';
import { createClient } from '../sdk/index.js';
import type { LogMessage } from '../connectors/log4js/message-format.js';
import type { MetaqAppenderStats } from '../connectors/log4js/log4js-appender.js';
import { freePort } from './harness/free-port.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const root = new URL('..', import.meta.url).pathname;

/** The application: logs EVENTS events, reports, optionally waits for a line on stdin, then log4js.shutdown. */
const APP = `'use strict';
const log4js = require('log4js');
const { stats } = require('metaq/log4js');
log4js.configure({
  appenders: { mq: { type: 'metaq/log4js', ...JSON.parse(process.env.APPENDER) } },
  categories: { default: { appenders: ['mq'], level: 'trace' } },
});
const log = log4js.getLogger(process.env.CATEGORY);
const report = (phase, extra) => process.stdout.write(JSON.stringify({ phase, stats: stats()[0], ...extra }) + '\\n');
const t0 = performance.now();
for (let i = 1; i <= Number(process.env.EVENTS); i++) log.info('event %d', i);
report('logged', { logMs: performance.now() - t0 });
const go = () => {
  const t1 = performance.now();
  log4js.shutdown((err) => {
    report('shutdown', { shutdownMs: performance.now() - t1, totalMs: performance.now() - t0, err: String(err) });
    process.exit(0);
  });
};
if (process.env.WAIT_STDIN) process.stdin.once('data', go); else go();
`;

interface Report {
  readonly phase: 'logged' | 'shutdown';
  readonly stats: MetaqAppenderStats;
  readonly logMs?: number;
  readonly shutdownMs?: number;
  readonly totalMs?: number;
}

interface App {
  readonly pid: number;
  next(): Promise<Report>;
  /** Lets an app started with `waitForStdin` go on to shutdown. */
  proceed(): void;
  readonly exited: Promise<number | null>;
}

let dir: { path: string; remove(): Promise<void> };
const children: { kill(): boolean }[] = [];

function runApp(env: { appender: Record<string, unknown>; events: number; category: string; waitForStdin?: boolean }):
App {
  const child = spawn(process.execPath, [join(dir.path, 'app.cjs')], {
    cwd: dir.path,
    env: {
      ...process.env,
      NODE_PATH: [join(dir.path, 'node_modules'), join(root, 'node_modules')].join(':'),
      NODE_OPTIONS: '',
      APPENDER: JSON.stringify(env.appender),
      EVENTS: String(env.events),
      CATEGORY: env.category,
      ...(env.waitForStdin === true ? { WAIT_STDIN: '1' } : {}),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    pid: child.pid!,
    next: async () => {
      const r = await lines.next();
      if (r.done === true) throw new Error('the application exited before reporting');
      return JSON.parse(r.value) as Report;
    },
    proceed: () => { child.stdin!.write('go\n'); },
    exited: new Promise((resolve) => child.once('exit', resolve)),
  };
}

/** Every message of the topic, parsed, in log order (partition 0: the default broker has one partition a topic). */
async function readTopic(port: number, topic: string): Promise<LogMessage[]> {
  const client = await createClient({ serverUrl: `meta://127.0.0.1:${port}` });
  try {
    const messages = await lastValueFrom(client.browse(topic).pipe(toArray()));
    return messages.map((m) => {
      assert.equal(m.attribute, 'INFO', 'the level travels as the message attribute too');
      return JSON.parse(m.payload.toString('utf8')) as LogMessage;
    });
  } finally {
    await client.close();
  }
}

function assertSequence(messages: readonly LogMessage[], from: number, to: number, pid: number, category: string): void {
  assert.equal(messages.length, to - from + 1, 'message count');
  messages.forEach((m, i) => {
    const seq = from + i;
    if (m.seq !== seq || m.message !== `event ${seq}`) assert.fail(`message ${i} is seq ${m.seq} "${m.message}", expected ${seq}`);
  });
  const m = messages[0]!;
  assert.equal(m.v, 1);
  assert.equal(m.level, 'INFO');
  assert.equal(m.category, category);
  assert.equal(m.pid, pid);
  assert.equal(typeof m.host, 'string');
  assert.ok(Math.abs(Date.parse(m.timestamp) - Date.now()) < 120_000, `timestamp ${m.timestamp}`);
}

describe('connectors/log4js: the appender in a plain CommonJS application', () => {
  const brokers: TestBroker[] = [];

  before(async () => {
    dir = await tempDir('metaq-log4js-');
    await mkdir(join(dir.path, 'node_modules'));
    await symlink(root, join(dir.path, 'node_modules', 'metaq'));
    await writeFile(join(dir.path, 'app.cjs'), APP);
  });

  after(async () => {
    for (const c of children) c.kill();
    for (const b of brokers) await b.dispose();
    await dir.remove();
  });

  it('delivers 100k events complete and in order (one partition), blocking for room instead of dropping', async () => {
    const broker = await startTestBroker();
    brokers.push(broker);
    const topic = uniqueName('logs');
    const app = runApp({
      appender: { topic, serverUrl: `meta://127.0.0.1:${broker.port}`, overflow: 'block', blockTimeoutMs: 10_000 },
      events: 100_000, category: 'orders',
    });
    const logged = await app.next();
    const done = await app.next();
    assert.equal(done.stats.sent, 100_000);
    assert.equal(done.stats.dropped + done.stats.lost + done.stats.failed + done.stats.errors, 0);
    const messages = await readTopic(broker.port, topic);
    assertSequence(messages, 1, 100_000, app.pid, 'orders');
    console.log(`log4js 100k: log calls ${logged.logMs!.toFixed(0)} ms, until delivered ${done.totalMs!.toFixed(0)} ms ` +
      `(${Math.round(100_000 / (done.totalMs! / 1000))} events/s), retries ${done.stats.retries}`);
  });

  it('buffers up to the bound while the broker is down at start, counts the drops beyond, then delivers', async () => {
    const port = await freePort();
    const topic = uniqueName('logs');
    const app = runApp({
      appender: { topic, serverUrl: `meta://127.0.0.1:${port}`, bufferSize: 1000, reconnectMaxMs: 200 },
      events: 1500, category: 'boot', waitForStdin: true,
    });
    const logged = await app.next();
    assert.equal(logged.stats.buffered, 1000);
    assert.equal(logged.stats.dropped, 500);
    assert.equal(logged.stats.connected, false);
    const broker = await startTestBroker({ 'system.serverPort': String(port) });
    brokers.push(broker);
    await waitFor(async () => (await readTopic(port, topic)).length === 1000, { timeoutMs: 20_000, what: '1000 events' });
    app.proceed();
    const done = await app.next();
    assert.deepEqual({ sent: done.stats.sent, dropped: done.stats.dropped, lost: done.stats.lost },
      { sent: 1000, dropped: 500, lost: 0 });
    assertSequence(await readTopic(port, topic), 1, 1000, app.pid, 'boot');
  });

  it("under overflow 'block' waits blockTimeoutMs once per outage, not once per event, then drops", async () => {
    const port = await freePort();
    const topic = uniqueName('logs');
    const app = runApp({
      appender: { topic, serverUrl: `meta://127.0.0.1:${port}`, bufferSize: 100, overflow: 'block',
        blockTimeoutMs: 300, shutdownTimeoutMs: 300 },
      events: 1000, category: 'blocked',
    });
    const logged = await app.next();
    assert.ok(logged.logMs! >= 290, `the log calls returned after ${logged.logMs} ms: they did not block`);
    assert.ok(logged.logMs! < 2000, `the log calls took ${logged.logMs} ms: blocked more than once`);
    assert.deepEqual({ buffered: logged.stats.buffered, dropped: logged.stats.dropped }, { buffered: 100, dropped: 900 });
    const done = await app.next();
    assert.equal(done.stats.lost, 100, 'what was buffered when the deadline passed is counted as lost');
  });

  it('shutdown delivers everything buffered, without waiting for the linger', async () => {
    const broker = await startTestBroker();
    brokers.push(broker);
    const topic = uniqueName('logs');
    const app = runApp({
      appender: { topic, serverUrl: `meta://127.0.0.1:${broker.port}`, batchSize: 5000, lingerMs: 600_000 },
      events: 3000, category: 'bye', waitForStdin: true,
    });
    const logged = await app.next();
    assert.equal(logged.stats.sent, 0, 'nothing leaves before the batch fills or the linger passes');
    assert.equal(logged.stats.buffered, 3000);
    app.proceed();
    const done = await app.next();
    assert.equal(done.stats.sent, 3000);
    assert.ok(done.shutdownMs! < 5000, `shutdown took ${done.shutdownMs} ms`);
    assertSequence(await readTopic(broker.port, topic), 1, 3000, app.pid, 'bye');
    assert.equal(await app.exited, 0);
  });

  it('shutdown with the broker away returns at its deadline and counts what it could not deliver', async () => {
    const port = await freePort();
    const app = runApp({
      appender: { topic: uniqueName('logs'), serverUrl: `meta://127.0.0.1:${port}`, shutdownTimeoutMs: 500 },
      events: 10, category: 'gone',
    });
    await app.next();
    const done = await app.next();
    assert.equal(done.stats.lost, 10);
    assert.ok(done.shutdownMs! < 2500, `shutdown took ${done.shutdownMs} ms for a 500 ms deadline`);
  });
});

describe('connectors/log4js: the appender never throws into the application', () => {
  it('counts a throwing layout and an unserializable context as errors or drops the context, and goes on', async () => {
    const broker = await startTestBroker();
    const topic = uniqueName('logs');
    try {
      const appenderModule = createRequire(import.meta.url)('../connectors/log4js/index.cjs') as
        AppenderModule & { stats(): MetaqAppenderStats[] };
      let calls = 0;
      log4js.addLayout('sometimes-throws', () => (e) => {
        if (++calls % 2 === 0) throw new Error('layout failure');
        return String(e.data[0]);
      });
      log4js.configure({
        appenders: { mq: { type: appenderModule, topic, serverUrl: `meta://127.0.0.1:${broker.port}`,
          layout: { type: 'sometimes-throws' } } },
        categories: { default: { appenders: ['mq'], level: 'info' } },
      });
      const log = log4js.getLogger('safe');
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      log.addContext('loop', circular);
      for (let i = 0; i < 10; i++) log.info(`m${i}`);
      await new Promise<void>((resolve, reject) => log4js.shutdown((e) => (e === undefined ? resolve() : reject(e))));
      const s = appenderModule.stats().find((x) => x.topic === topic)!;
      assert.deepEqual({ sent: s.sent, errors: s.errors }, { sent: 5, errors: 5 });
      const messages = await readTopic(broker.port, topic);
      assert.deepEqual(messages.map((m) => m.message), ['m0', 'm2', 'm4', 'm6', 'm8']);
      assert.equal(messages[0]!.context, undefined, 'a circular context is left out, the event kept');
    } finally {
      await broker.dispose();
    }
  });
});
