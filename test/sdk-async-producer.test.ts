import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { ClientContext, Closeable } from '../sdk/client/client-context.js';
import { DirectRouter } from '../sdk/cluster/direct-router.js';
import { BrokerLink } from '../sdk/network/broker-link.js';
import { AsyncProducer } from '../sdk/producer/async-producer.js';
import { decodeMessageSet } from '../sdk/protocol/record.js';
import { killSpawnedBrokers, spawnBroker } from './harness/broker-process.js';
import { freePort } from './harness/free-port.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

interface TestClient {
  readonly ctx: ClientContext;
  readonly link: BrokerLink;
  close(): Promise<void>;
}

/** A client context over a real reconnecting link, as createClient builds it; `close()` closes what it owns. */
async function connectContext(port: number, recoverDir: string): Promise<TestClient> {
  const link = new BrokerLink({ host: '127.0.0.1', port }, {
    logger, requestTimeoutMs: 3000, reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
  });
  await link.whenConnected();
  const router = await DirectRouter.start(link);
  const owned = new Set<Closeable>();
  let closing = false;
  const ctx: ClientContext = {
    router, logger,
    options: { requestTimeoutMs: 3000, recoverDir, offsetsFile: `${recoverDir}/offsets.json` },
    get closing() { return closing; },
    own(r) { owned.add(r); return () => { owned.delete(r); }; },
  };
  return {
    ctx, link,
    close: async () => {
      closing = true;
      for (const r of [...owned].reverse()) await r.close();
      await router.close();
    },
  };
}

/** The payloads of partition 0 of `topic`, read with raw gets. */
async function readPayloads(port: number, topic: string): Promise<string[]> {
  const raw = await RawClient.connect(port);
  try {
    const out: string[] = [];
    let offset = 0;
    for (;;) {
      const r = await raw.get(topic, 'reader', 0, offset);
      if (r.type !== 'value') return out;
      const set = decodeMessageSet(r.body, { baseOffset: offset });
      for (const m of set.messages) out.push(m.payload.toString());
      if (set.bytesConsumed === 0) return out;
      offset += set.bytesConsumed;
    }
  } finally {
    await raw.close();
  }
}

/** Checks that `got` holds m0..m(n-1), first occurrences in order; returns the number of duplicates. */
function checkAllInOrder(got: string[], n: number): number {
  const seen = new Set<string>();
  const firsts: number[] = [];
  for (const p of got) {
    if (seen.has(p)) continue;
    seen.add(p);
    firsts.push(Number(p.slice(1)));
  }
  assert.deepEqual(firsts, Array.from({ length: n }, (_, i) => i), 'every message, first occurrences in send order');
  return got.length - firsts.length;
}

describe('sdk/producer/async-producer', () => {
  after(() => killSpawnedBrokers());

  it('sends directly while the broker is up and the window has room', async () => {
    const tb = await startTestBroker({ 'system.longPollTimeoutMs': '0' });
    const dir = await tempDir('metaq-async-');
    const client = await connectContext(tb.port, dir.path);
    try {
      const producer = new AsyncProducer<string>(client.ctx);
      const topic = uniqueName('direct');
      for (let i = 0; i < 1000; i++) producer.send({ topic, value: `m${i}`, partition: 0 });
      await producer.flush(10_000);
      assert.deepEqual(producer.stats(), { sent: 1000, spooled: 0, resent: 0, dropped: 0, failed: 0 });
      assert.equal(checkAllInOrder(await readPayloads(tb.port, topic), 1000), 0);
      await producer.close();
    } finally {
      await client.close();
      await tb.dispose();
      await dir.remove();
    }
  });

  it('spools what overflows the window and resends it in order', async () => {
    const tb = await startTestBroker({ 'system.longPollTimeoutMs': '0' });
    const dir = await tempDir('metaq-async-');
    const client = await connectContext(tb.port, dir.path);
    try {
      const producer = new AsyncProducer<string>(client.ctx, { windowSize: 16, resendIntervalMs: 50 });
      const topic = uniqueName('window');
      producer.send({ topic, value: 'm0', partition: 0 });
      await producer.flush(10_000); // past the start-up, the overflow below is the window's
      for (let i = 1; i < 3000; i++) producer.send({ topic, value: `m${i}`, partition: 0 });
      await producer.flush(10_000);
      await waitFor(() => producer.spooledNow === 0, { timeoutMs: 20_000, what: 'the spool to drain' });
      const s = producer.stats();
      assert.ok(s.spooled > 0, `nothing was spooled: ${JSON.stringify(s)}`);
      assert.equal(s.sent + s.resent, 3000, JSON.stringify(s));
      assert.equal(s.resent, s.spooled);
      assert.equal(checkAllInOrder(await readPayloads(tb.port, topic), 3000), 0);
      await producer.close();
    } finally {
      await client.close();
      await tb.dispose();
      await dir.remove();
    }
  });

  it('counts refused messages as failed and throws for bad records', async () => {
    const tb = await startTestBroker();
    const dir = await tempDir('metaq-async-');
    const client = await connectContext(tb.port, dir.path);
    try {
      const producer = new AsyncProducer<string>(client.ctx, { maxMessageSize: 100 });
      const topic = uniqueName('refused');
      producer.send({ topic, value: 'x', partition: 9 });
      await producer.flush(5000);
      assert.deepEqual(producer.stats(), { sent: 0, spooled: 0, resent: 0, dropped: 0, failed: 1 });
      assert.throws(() => producer.send({ topic: 'bad topic', value: 'x' }), { name: 'InvalidArgumentError' });
      assert.throws(() => producer.send({ topic, value: 'x'.repeat(101) }), { name: 'MessageTooLargeError' });
      await producer.close();
      assert.throws(() => producer.send({ topic, value: 'x' }), { name: 'ShuttingDownError' });
    } finally {
      await client.close();
      await tb.dispose();
      await dir.remove();
    }
  });

  it('spools while the broker process is dead and delivers everything in order once it is back', async () => {
    const data = await tempDir('metaq-async-data-');
    const dir = await tempDir('metaq-async-');
    const port = await freePort();
    const set = { 'system.longPollTimeoutMs': '0' };
    let broker = await spawnBroker({ dataDir: data.path, port, set, logLevel: 'warn' });
    const client = await connectContext(port, dir.path);
    try {
      const producer = new AsyncProducer<string>(client.ctx, { resendIntervalMs: 100 });
      const topic = uniqueName('outage');
      let n = 0;
      // A steady sender (10 messages per timer turn) that keeps going through the kill and the restart.
      let pumping = true;
      const pump = (): void => {
        if (!pumping) return;
        for (let i = 0; i < 10; i++) producer.send({ topic, value: `m${n++}`, partition: 0 });
        setTimeout(pump, 1);
      };
      pump();
      await waitFor(() => producer.stats().sent >= 1000, { what: '1000 messages sent' });
      broker.kill('SIGKILL');
      await broker.exited;
      await waitFor(() => !client.link.isConnected, { what: 'the link to notice the dead broker' });
      const atDrop = n;
      await waitFor(() => n >= atDrop + 1000 && producer.spooledNow >= 1000, { what: 'messages to spool while the broker is dead' });
      broker = await spawnBroker({ dataDir: data.path, port, set, logLevel: 'warn' });
      await waitFor(() => producer.stats().resent >= 1000, { timeoutMs: 30_000, what: 'the spool to be resent' });
      const sentBefore = producer.stats().sent;
      await waitFor(() => producer.stats().sent >= sentBefore + 500, { timeoutMs: 30_000, what: 'direct sends again' });
      pumping = false;
      await producer.flush(10_000);
      await waitFor(() => producer.spooledNow === 0, { timeoutMs: 30_000, what: 'the spool to drain' });
      const s = producer.stats();
      assert.equal(s.dropped + s.failed, 0, JSON.stringify(s));
      assert.equal(s.sent + s.spooled, n, JSON.stringify(s));
      assert.equal(s.resent, s.spooled, JSON.stringify(s));
      const duplicates = checkAllInOrder(await readPayloads(port, topic), n);
      console.log(`outage: ${JSON.stringify(s)}, ${duplicates} duplicates (puts stored but unanswered when the broker died)`);
      await producer.close();
    } finally {
      await client.close();
      await broker.stop();
      await data.remove();
      await dir.remove();
    }
  });

  it('resends the spool a previous producer left on the same recoverDir', async () => {
    const data = await tempDir('metaq-async-data-');
    const dir = await tempDir('metaq-async-');
    const port = await freePort();
    const set = { 'system.longPollTimeoutMs': '0' };
    let broker = await spawnBroker({ dataDir: data.path, port, set, logLevel: 'warn' });
    const topic = uniqueName('restart');
    const first = await connectContext(port, dir.path);
    try {
      const producer = new AsyncProducer<string>(first.ctx);
      broker.kill('SIGKILL');
      await broker.exited;
      await waitFor(() => !first.link.isConnected, { what: 'the link to notice the dead broker' });
      for (let i = 0; i < 300; i++) producer.send({ topic, value: `m${i}`, partition: 0 });
      await producer.flush(10_000);
      assert.equal(producer.stats().spooled, 300);
      await producer.close();
    } finally {
      await first.close();
    }
    broker = await spawnBroker({ dataDir: data.path, port, set, logLevel: 'warn' });
    const second = await connectContext(port, dir.path);
    try {
      const producer = new AsyncProducer<string>(second.ctx, { resendIntervalMs: 100 });
      await waitFor(() => producer.stats().resent === 300 && producer.spooledNow === 0, { timeoutMs: 20_000, what: 'the old spool to be resent' });
      assert.equal(checkAllInOrder(await readPayloads(port, topic), 300), 0);
      await producer.close();
    } finally {
      await second.close();
      await broker.stop();
      await data.remove();
      await dir.remove();
    }
  });

  it('drops and counts messages beyond maxSpooled', async () => {
    const data = await tempDir('metaq-async-data-');
    const dir = await tempDir('metaq-async-');
    const port = await freePort();
    const broker = await spawnBroker({ dataDir: data.path, port, logLevel: 'warn' });
    const client = await connectContext(port, dir.path);
    try {
      const producer = new AsyncProducer<string>(client.ctx, { maxSpooled: 10 });
      broker.kill('SIGKILL');
      await broker.exited;
      await waitFor(() => !client.link.isConnected, { what: 'the link to notice the dead broker' });
      for (let i = 0; i < 30; i++) producer.send({ topic: 'capped', value: `m${i}` });
      await producer.flush(5000);
      assert.deepEqual(producer.stats(), { sent: 0, spooled: 10, resent: 0, dropped: 20, failed: 0 });
      await producer.close();
    } finally {
      await client.close();
      await data.remove();
      await dir.remove();
    }
  });
});
