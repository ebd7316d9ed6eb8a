import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { lastValueFrom, toArray } from 'rxjs';
import type { ClientContext } from '../sdk/client/client-context.js';
import { DirectRouter } from '../sdk/cluster/direct-router.js';
import { COMPRESSION_FLAG_MASK, CompressionTypes, compressPayload, flagWithCompression } from '../sdk/codec/compression.js';
import { Deserializers } from '../sdk/codec/serializers.js';
import { fetchOnce } from '../sdk/consumer/fetch-once.js';
import { RecoverManager, type RecoverManagerOptions } from '../sdk/consumer/recover-manager.js';
import { browseTopic } from '../sdk/consumer/topic-browser.js';
import type { Message } from '../sdk/message.js';
import { BrokerLink } from '../sdk/network/broker-link.js';
import { encodePayload } from '../sdk/protocol/record.js';
import { spawnBroker, killSpawnedBrokers, type BrokerProcess } from './harness/broker-process.js';
import { RawClient } from './harness/raw-client.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const REQUEST_TIMEOUT_MS = 1_500;

/** A client context on a reconnecting link to `port`, with its own recoverDir. */
async function contextFor(port: number, recoverDir: string): Promise<ClientContext & { close(): Promise<void> }> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const link = new BrokerLink({ host: '127.0.0.1', port }, {
    logger, requestTimeoutMs: REQUEST_TIMEOUT_MS, reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
  });
  await link.whenConnected();
  const router = await DirectRouter.start(link);
  const owned = new Set<{ close(): Promise<void> }>();
  let closing = false;
  return {
    router,
    logger,
    options: { requestTimeoutMs: REQUEST_TIMEOUT_MS, recoverDir, offsetsFile: `${recoverDir}/offsets.json` },
    get closing() { return closing; },
    own: (r) => {
      owned.add(r);
      return () => { owned.delete(r); };
    },
    close: async () => {
      closing = true;
      for (const r of [...owned].reverse()) await r.close();
      await router.close();
    },
  };
}

describe('sdk: the recover manager against a broker process', () => {
  let dataDir: { path: string; remove(): Promise<void> };
  let recoverDir: { path: string; remove(): Promise<void> };
  let broker: BrokerProcess;
  let raw: RawClient;
  let ctx: Awaited<ReturnType<typeof contextFor>>;
  const managers: RecoverManager<string>[] = [];

  before(async () => {
    dataDir = await tempDir('metaq-recover-data-');
    recoverDir = await tempDir('metaq-recover-dir-');
    broker = await spawnBroker({ dataDir: dataDir.path });
    raw = await RawClient.connect(broker.port);
    ctx = await contextFor(broker.port, recoverDir.path);
  });

  after(async () => {
    for (const m of managers) await m.close();
    await ctx?.close();
    await raw?.close();
    if (broker?.alive()) await broker.stop();
    await killSpawnedBrokers();
    await dataDir?.remove();
    await recoverDir?.remove();
  });

  /** Puts messages to partition 0 of `topic` and reads them back as a consumer would see them. */
  async function produced(topic: string, texts: readonly string[], attribute: string | null = null,
    compressed = false): Promise<Message<string>[]> {
    for (const t of texts) {
      const payload = compressed ? await compressPayload(CompressionTypes.GZIP, Buffer.from(t)) : Buffer.from(t);
      const { data, flag } = encodePayload(payload, attribute, compressed ? flagWithCompression(0, CompressionTypes.GZIP) : 0);
      assert.equal((await raw.put(topic, 0, data, { flag })).code, 200);
    }
    const r = await fetchOnce(ctx, topic, 0, 0, { deserializer: Deserializers.string });
    assert.equal(r.messages.length, texts.length);
    return r.messages;
  }

  function manager(topic: string, group: string, redeliver: (m: Message<string>) => Promise<void>,
    extra: Partial<RecoverManagerOptions<string>> = {}): RecoverManager<string> {
    const m = new RecoverManager<string>({
      ctx, topic, group, intervalMs: 60_000, maxAttempts: 3, deadLetterTopic: `${topic}.DLQ`,
      deserializer: Deserializers.string, redeliver, ...extra,
    });
    managers.push(m);
    return m;
  }

  it('redelivers stored messages in order and removes them', async () => {
    const topic = uniqueName('rec');
    const messages = await produced(topic, ['one', 'two', 'three'], 'attr');
    const got: Message<string>[] = [];
    const m = manager(topic, uniqueName('g'), async (msg) => { got.push(msg); });
    for (const msg of messages) await m.store(msg);
    assert.equal(m.size, 3);
    assert.deepEqual(await m.runOnce(), { redelivered: 3, failed: 0, deadLettered: 0, deadLetterFailed: 0 });
    assert.equal(m.size, 0);
    assert.deepEqual(got.map((g) => [g.value, g.attribute, g.id, g.offset, g.nextOffset, g.topic]),
      messages.map((g) => [g.value, 'attr', g.id, g.offset, g.nextOffset, topic]));
    assert.ok(got.every((g) => g.redeliveries >= 1), 'a recovered message says it was delivered before');
    assert.deepEqual(await m.runOnce(), { redelivered: 0, failed: 0, deadLettered: 0, deadLetterFailed: 0 });
    await m.close();
  });

  it('keeps stored messages and their attempt counts across a restart', async () => {
    const topic = uniqueName('restart');
    const group = uniqueName('g');
    const messages = await produced(topic, ['a', 'b']);
    const first = manager(topic, group, () => Promise.reject(new Error('still failing')));
    for (const msg of messages) await first.store(msg);
    assert.deepEqual(await first.runOnce(), { redelivered: 0, failed: 2, deadLettered: 0, deadLetterFailed: 0 });
    await first.close();
    await assert.rejects(first.store(messages[0]!), /shutting down/);

    const got: string[] = [];
    const second = manager(topic, group, async (msg) => { got.push(msg.value); });
    await second.ready();
    assert.equal(second.size, 2);
    const third = manager(topic, uniqueName('other-group'), async () => undefined);
    await third.ready();
    assert.equal(third.size, 0, 'another group has its own store');
    await second.runOnce();
    assert.deepEqual(got, ['a', 'b']);
    assert.equal(second.size, 0);
  });

  it('sends a message that keeps failing to the dead-letter topic after maxAttempts, with attribute and payload', async () => {
    const topic = uniqueName('dlq');
    const group = uniqueName('g');
    const [good, bad] = await produced(topic, ['fine', 'poison'], 'kind');
    let calls = 0;
    const redeliver = async (msg: Message<string>): Promise<void> => {
      calls++;
      if (msg.value === 'poison') throw new Error('cannot handle');
    };
    const a = manager(topic, group, redeliver, { maxAttempts: 2 });
    await a.store(bad!);
    await a.store(good!);
    assert.deepEqual(await a.runOnce(), { redelivered: 1, failed: 1, deadLettered: 0, deadLetterFailed: 0 });
    await a.close();
    // The second failure is the second attempt: a restarted manager remembers the first.
    const b = manager(topic, group, redeliver, { maxAttempts: 2 });
    assert.deepEqual(await b.runOnce(), { redelivered: 0, failed: 0, deadLettered: 1, deadLetterFailed: 0 });
    assert.equal(calls, 3);
    assert.equal(b.size, 0);
    const dlq = await lastValueFrom(browseTopic(ctx, `${topic}.DLQ`, { deserializer: Deserializers.string }).pipe(toArray()));
    assert.deepEqual(dlq.map((d) => [d.value, d.attribute]), [['poison', 'kind']]);
  });

  it('keeps the compression of a dead-lettered message', async () => {
    const topic = uniqueName('dlqz');
    const text = 'compress me '.repeat(40);
    const [msg] = await produced(topic, [text], null, true);
    assert.equal(msg!.value, text);
    const m = manager(topic, uniqueName('g'), () => Promise.reject(new Error('no')), { maxAttempts: 1 });
    await m.store(msg!);
    assert.equal((await m.runOnce()).deadLettered, 1);
    const [dead] = await lastValueFrom(browseTopic(ctx, `${topic}.DLQ`, { deserializer: Deserializers.string }).pipe(toArray()));
    assert.equal(dead?.value, text);
    assert.equal((dead!.flag & COMPRESSION_FLAG_MASK) !== 0, true, 'stored compressed in the DLQ too');
  });

  it('runs rounds on its own once started, and close waits for the running round', async () => {
    const topic = uniqueName('loop');
    const [msg] = await produced(topic, ['later']);
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => { release = r; });
    let started = false;
    const m = manager(topic, uniqueName('g'), async () => {
      started = true;
      await released;
    }, { intervalMs: 50 });
    await m.store(msg!);
    m.start();
    await waitFor(() => started, { what: 'the first round to redeliver' });
    let closed = false;
    const closing = m.close().then(() => { closed = true; });
    await new Promise((r) => setImmediate(r));
    assert.equal(closed, false, 'close waits for the redelivery in progress');
    release();
    await closing;
    assert.equal(closed, true);
    assert.equal(m.size, 0);
  });

  it('keeps a message whose dead-letter send fails, and sends it once the broker is back', async () => {
    const topic = uniqueName('down');
    const group = uniqueName('g');
    const [msg] = await produced(topic, ['survivor'], 'x');
    const m = manager(topic, group, () => Promise.reject(new Error('no')), { maxAttempts: 1 });
    await m.store(msg!);
    const port = broker.port;
    broker.kill('SIGKILL');
    await broker.exited;
    assert.deepEqual(await m.runOnce(), { redelivered: 0, failed: 0, deadLettered: 0, deadLetterFailed: 1 });
    assert.equal(m.size, 1);
    broker = await spawnBroker({ dataDir: dataDir.path, port });
    await raw.close();
    raw = await RawClient.connect(broker.port);
    const r = await waitFor(async () => {
      const round = await m.runOnce();
      return round.deadLettered === 1 ? round : undefined;
    }, { timeoutMs: 20_000, what: 'the dead-letter send after the restart' });
    assert.equal(r.deadLetterFailed, 0);
    assert.equal(m.size, 0);
    const dlq = await lastValueFrom(browseTopic(ctx, `${topic}.DLQ`, { deserializer: Deserializers.string }).pipe(toArray()));
    assert.deepEqual(dlq.map((d) => [d.value, d.attribute]), [['survivor', 'x']]);
  });
});
