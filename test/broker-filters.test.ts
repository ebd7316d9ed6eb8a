import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startBroker } from '../broker/broker.js';
import { embeddedConfig } from '../broker/config/server-config.js';
import { ConfigError } from '../sdk/errors.js';
import { createClient, type MetaqClient } from '../sdk/index.js';
import type { Message } from '../sdk/message.js';
import { crc32Masked, encodePayload, RECORD_HEADER_SIZE } from '../sdk/protocol/record.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/filters/', import.meta.url));
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

// Topic names are fixed at broker start (the filters are configured there), unique to this process.
const MIXED = uniqueName('filter-mixed');
const REJECTED = uniqueName('filter-none');
const THROWING = uniqueName('filter-throwing');
const LARGE = uniqueName('filter-large');
const VIP = 'vip-group';
const CAREFUL = 'careful-group';

/** Puts the messages on partition 0 (pipelined, in order); returns the log end offset. */
async function produce(port: number, topic: string, messages: ReadonlyArray<{ payload: string; attribute: string | null }>):
Promise<number> {
  const raw = await RawClient.connect(port);
  let end = 0;
  try {
    const puts = messages.map(({ payload, attribute }) => {
      const { data, flag } = encodePayload(Buffer.from(payload), attribute);
      return raw.put(topic, 0, data, { flag, checksum: crc32Masked(data) }).then((r) => {
        if (r.code !== 200) throw new Error(`put answered ${r.code} ${r.body.toString()}`);
        end = Math.max(end, Number(r.body.toString().split(' ')[2]) + RECORD_HEADER_SIZE + data.length);
      });
    });
    await Promise.all(puts);
  } finally {
    await raw.close();
  }
  return end;
}

describe('server-side consumer filters (in-process broker, SDK consumer)', () => {
  let tb: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let client: MetaqClient;
  before(async () => {
    tb = await startTestBroker({
      'system.appClassPath': FIXTURES,
      'system.longPollTimeoutMs': '200',
      [`topic=${MIXED}.numPartitions`]: '1',
      [`topic=${MIXED}.group.${VIP}`]: 'attribute-filter.ts',
      [`topic=${REJECTED}.numPartitions`]: '1',
      [`topic=${REJECTED}.group.${VIP}`]: 'attribute-filter.ts',
      [`topic=${LARGE}.numPartitions`]: '1',
      [`topic=${LARGE}.group.${VIP}`]: 'attribute-filter.ts',
      [`topic=${THROWING}.numPartitions`]: '1',
      [`topic=${THROWING}.group.${CAREFUL}`]: join(FIXTURES, 'throwing-filter.ts'),
    });
    dir = await tempDir('metaq-filters-');
    client = await createClient({
      logger, serverUrl: `meta://127.0.0.1:${tb.port}`, offsetsFile: join(dir.path, 'offsets.json'),
      recoverDir: join(dir.path, 'recover'),
    });
  });
  after(async () => {
    await client.close();
    await tb.dispose();
    await dir.remove();
  });

  /** Reads `topic` as `group` until `until` holds; returns the messages and the consumer (still open). */
  async function consume(topic: string, group: string, until: (seen: Message[]) => boolean, what: string) {
    const consumer = client.consumer({ group, maxFetchDelayMs: 50, commitIntervalMs: 50, fetchSize: 4096 });
    const seen: Message[] = [];
    const errors: unknown[] = [];
    const sub = consumer.messages$(topic).subscribe({ next: (d) => { seen.push(d.message); d.ack(); }, error: (e) => errors.push(e) });
    await waitFor(() => until(seen) || errors.length > 0, { what });
    assert.deepEqual(errors, []);
    return { seen, consumer, sub };
  }

  it('delivers only the accepted messages to the filtered group, and every message to another group', async () => {
    // Runs of accepted and rejected messages of several lengths, across several fetch windows of 4 KiB.
    const messages = Array.from({ length: 300 }, (_, i) => ({
      payload: `m-${i}-${'x'.repeat(i % 50)}`,
      attribute: i % 7 < 3 ? 'vip' : i % 7 === 3 ? 'gold' : i % 7 === 4 ? null : 'plain',
    }));
    const end = await produce(tb.port, MIXED, messages);
    const wanted = messages.filter((m) => m.attribute === 'vip' || m.attribute === 'gold').map((m) => m.payload);

    const vip = await consume(MIXED, VIP, () => true, 'start');
    await waitFor(() => vip.consumer.committed(MIXED)['0-0'] === end, { what: `the vip group to commit ${end}` });
    assert.deepEqual(vip.seen.map((m) => m.payload.toString()), wanted);
    for (const m of vip.seen) assert.ok(m.attribute === 'vip' || m.attribute === 'gold');
    vip.sub.unsubscribe();
    await vip.consumer.close();

    const all = await consume(MIXED, uniqueName('everyone'), (seen) => seen.length >= messages.length, 'all messages');
    assert.deepEqual(all.seen.map((m) => m.payload.toString()), messages.map((m) => m.payload));
    all.sub.unsubscribe();
    await all.consumer.close();
  });

  it('answers 301 past a window with no accepted message, and the consumer commits past it', async () => {
    const rejected = Array.from({ length: 100 }, (_, i) => ({ payload: `plain-${i}`, attribute: i % 2 === 0 ? 'plain' : null }));
    const end = await produce(tb.port, REJECTED, rejected);
    const raw = await RawClient.connect(tb.port);
    try {
      const window = 1000;
      const r = await raw.get(REJECTED, VIP, 0, 0, window);
      assert.equal(r.type, 'result');
      assert.equal(r.code, 301);
      const to = Number(r.body.toString());
      assert.ok(to > 0 && to <= window, `301 to ${to}: the whole records of the first window`);
      const other = await raw.get(REJECTED, 'unfiltered', 0, 0, window);
      assert.equal(other.type, 'value', 'a group without a filter gets the raw window');
    } finally {
      await raw.close();
    }
    const vip = await consume(REJECTED, VIP, () => true, 'start');
    await waitFor(() => vip.consumer.committed(REJECTED)['0-0'] === end, { what: `the committed offset to reach ${end}` });
    assert.equal(vip.seen.length, 0);
    // The consumer is parked at the end; the next accepted message reaches it.
    await produce(tb.port, REJECTED, [{ payload: 'finally', attribute: 'vip' }, { payload: 'not this', attribute: 'plain' }]);
    await waitFor(() => vip.seen.length >= 1, { what: 'the vip message' });
    assert.deepEqual(vip.seen.map((m) => m.payload.toString()), ['finally']);
    vip.sub.unsubscribe();
    await vip.consumer.close();
  });

  it('filters the HTTP gateway\'s /get the same way', async () => {
    await produce(tb.port, REJECTED, Array.from({ length: 40 }, (_, i) => ({ payload: `plain-${i}`, attribute: 'plain' })));
    const base = `http://127.0.0.1:${tb.broker.httpPort}/get/0?topic=${REJECTED}&partition=0&offset=0&maxsize=600`;
    const filtered = await fetch(`${base}&group=${VIP}`);
    assert.equal(filtered.status, 301);
    assert.ok(Number(await filtered.text()) > 0);
    const plain = await fetch(`${base}&group=unfiltered`);
    assert.equal(plain.status, 200);
    assert.equal((await plain.arrayBuffer()).byteLength, 600);
  });

  it('answers a long accepted run with the whole window, and delivers messages larger than the first read', async () => {
    // 300 small accepted messages (more than the broker's first 16 KiB read), then rejected ones, then large ones.
    const small = Array.from({ length: 300 }, (_, i) => ({ payload: `small-${i}-${'s'.repeat(100)}`, attribute: 'vip' }));
    const rejected = Array.from({ length: 300 }, (_, i) => ({ payload: `no-${i}-${'n'.repeat(100)}`, attribute: 'plain' }));
    const large = Array.from({ length: 3 }, (_, i) => ({ payload: `large-${i}-${'L'.repeat(40_000)}`, attribute: 'gold' }));
    const messages = [...small, ...rejected, ...large];
    const end = await produce(tb.port, LARGE, messages);
    const raw = await RawClient.connect(tb.port);
    try {
      const r = await raw.get(LARGE, VIP, 0, 0, 1024 * 1024);
      assert.equal(r.type, 'value');
      const run = small.reduce((n, m) => n + RECORD_HEADER_SIZE + 4 + 3 + m.payload.length, 0);
      assert.equal(r.body.length, run, 'the whole accepted run in one answer');
      const skip = await raw.get(LARGE, VIP, 0, run, 1024 * 1024);
      assert.ok(skip.type === 'result' && skip.code === 301, `a 301, got ${skip.type}`);
      assert.equal(Number(skip.body.toString()), run + rejected.reduce((n, m) => n + RECORD_HEADER_SIZE + 4 + 5 + m.payload.length, 0));
    } finally {
      await raw.close();
    }
    const vip = await consume(LARGE, VIP, (seen) => seen.length >= small.length + large.length, 'the accepted messages');
    assert.deepEqual(vip.seen.map((m) => m.payload.toString()), [...small, ...large].map((m) => m.payload));
    await waitFor(() => vip.consumer.committed(LARGE)['0-0'] === end, { what: `the committed offset to reach ${end}` });
    vip.sub.unsubscribe();
    await vip.consumer.close();
  });

  it('treats a filter that throws as rejecting the message', async () => {
    const messages = Array.from({ length: 60 }, (_, i) => ({ payload: `${i % 3 === 0 ? 'boom' : 'ok'}-${i}`, attribute: null }));
    const end = await produce(tb.port, THROWING, messages);
    const careful = await consume(THROWING, CAREFUL, () => true, 'start');
    await waitFor(() => careful.consumer.committed(THROWING)['0-0'] === end, { what: `the committed offset to reach ${end}` });
    assert.deepEqual(careful.seen.map((m) => m.payload.toString()), messages.filter((_, i) => i % 3 !== 0).map((m) => m.payload));
    careful.sub.unsubscribe();
    await careful.consumer.close();
  });
});

describe('server-side consumer filters (start)', () => {
  it('refuses to start with a filter module that does not exist, naming the section, group and path', async () => {
    const dir = await tempDir('metaq-filters-start-');
    try {
      const config = embeddedConfig({ 'system.serverPort': '0', 'system.dashboardHttpPort': '0', 'system.dataPath': dir.path,
        'system.appClassPath': FIXTURES, 'topic=orders.group.billing': 'no-such-filter.ts' });
      await assert.rejects(startBroker(config, { logger }), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /group 'billing' in \[topic=orders\] \(module 'no-such-filter\.ts' → .*\/fixtures\/filters\/no-such-filter\.ts\): no such file/);
        return true;
      });
    } finally {
      await dir.remove();
    }
  });
});
