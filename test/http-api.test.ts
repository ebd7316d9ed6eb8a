/**
 * The JSON API under /api and the Prometheus /metrics on a real broker, driven with plain `fetch`: every route,
 * field validation, and counters that move by exactly what was produced and fetched.
 */
import assert from 'node:assert/strict';
import { appendFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startBroker, type Broker } from '../broker/broker.js';
import { parseConfig } from '../broker/config/server-config.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

interface Json { status: number; body: Record<string, unknown> }

async function api(base: string, path: string, init?: { method: string; body: unknown }): Promise<Json> {
  const r = await fetch(`${base}${path}`, init === undefined ? undefined : {
    method: init.method,
    body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    headers: { 'content-type': 'application/json' },
  });
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  return { status: r.status, body: await r.json() as Record<string, unknown> };
}

function post(base: string, topic: string, body: unknown): Promise<Json> {
  return api(base, `/api/topics/${topic}/messages`, { method: 'POST', body });
}

/** The value of one sample line of the Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function metrics(base: string): Promise<string> {
  const r = await fetch(`${base}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return r.text();
}

describe('http/api', () => {
  let tb: TestBroker;
  let base: string;

  before(async () => {
    tb = await startTestBroker({ 'system.maxMessageSize': '1000', 'system.numPartitions': '3' });
    base = `http://127.0.0.1:${tb.broker.httpPort}`;
  });

  after(async () => {
    await tb?.dispose();
  });

  it('describes the broker', async () => {
    const { status, body } = await api(base, '/api/broker');
    assert.equal(status, 200);
    assert.equal(body.brokerId, 0);
    assert.equal(body.port, tb.port);
    assert.equal(body.httpPort, tb.broker.httpPort);
    assert.equal(body.dataPath, tb.dataDir);
    assert.deepEqual(body.zk, { enabled: false, connect: '', root: '/meta' });
    assert.match(String(body.version), /^\d+\.\d+\.\d+/);
    assert.ok(Math.abs(Date.parse(String(body.startedAt)) - Date.now()) < 600_000);
    assert.equal(typeof body.uptimeSeconds, 'number');
  });

  it('shows a standalone cluster as this broker alone, and no groups', async () => {
    const cluster = await api(base, '/api/cluster');
    assert.deepEqual(cluster.body, { zk: false, brokers: [{ brokerId: 0, master: `meta://${tb.broker.config.system.hostName}:${tb.port}`, slaves: [], self: true }] });
    assert.deepEqual((await api(base, '/api/groups')).body, { zk: false, groups: [] });
  });

  it('produces utf8, base64 and attributed messages and browses them back', async () => {
    const topic = uniqueName('browse');
    const a = await post(base, topic, { value: 'héllo', partition: 2 });
    assert.equal(a.status, 200);
    assert.deepEqual([a.body.partition, a.body.offset], [2, 0]);
    assert.match(String(a.body.id), /^\d+$/);
    const b = await post(base, topic, { value: Buffer.from([0, 1, 255]).toString('base64'), encoding: 'base64', partition: 2, attribute: 'k=v' });
    assert.equal(b.status, 200);
    assert.equal(b.body.offset, 20 + Buffer.byteLength('héllo'));
    const any = await post(base, uniqueName('anywhere'), { value: 'anywhere' });
    assert.ok([0, 1, 2].includes(any.body.partition as number));

    const page = await api(base, `/api/topics/${topic}/messages?partition=2&encoding=base64`);
    assert.equal(page.status, 200);
    const messages = page.body.messages as { offset: number; nextOffset: number; id: string; attribute: string | null; value: string }[];
    const end = 20 + 6 + 20 + 4 + 3 + 3;
    assert.deepEqual(messages.map((m) => [m.offset, m.nextOffset, m.id, m.attribute, Buffer.from(m.value, 'base64')]), [
      [0, 26, a.body.id, null, Buffer.from('héllo')],
      [26, end, b.body.id, 'k=v', Buffer.from([0, 1, 255])],
    ]);
    assert.equal(page.body.nextOffset, end);

    const one = await api(base, `/api/topics/${topic}/messages?partition=2&limit=1`);
    assert.deepEqual([(one.body.messages as unknown[]).length, one.body.nextOffset], [1, 26]);
    const second = await api(base, `/api/topics/${topic}/messages?partition=2&offset=26`);
    assert.equal((second.body.messages as { value: string }[])[0]?.value, Buffer.from([0, 1, 255]).toString('utf8'));
    assert.deepEqual((await api(base, `/api/topics/${topic}/messages?partition=2&offset=${end}`)).body, { messages: [], nextOffset: end });
  });

  it('returns a message larger than maxBytes whole', async () => {
    const topic = uniqueName('large');
    const value = 'x'.repeat(900);
    await post(base, topic, { value, partition: 0 });
    const page = await api(base, `/api/topics/${topic}/messages?partition=0&maxBytes=100`);
    assert.deepEqual((page.body.messages as { value: string }[]).map((m) => m.value), [value]);
  });

  it('names the field of every bad message request', async () => {
    const topic = uniqueName('invalid');
    const cases: [unknown, number, RegExp][] = [
      [{}, 400, /field value must be a string/],
      [{ value: 1 }, 400, /field value must be a string/],
      [[1], 400, /body must be a JSON object/],
      [{ value: 'x', encoding: 'hex' }, 400, /field encoding must be "utf8" or "base64"/],
      [{ value: '@@@', encoding: 'base64' }, 400, /field value is not valid base64/],
      [{ value: 'x', partition: 3 }, 400, /field partition must be in 0\.\.2/],
      [{ value: 'x', partition: -1 }, 400, /field partition must be a non-negative integer/],
      [{ value: 'x', attribute: 5 }, 400, /field attribute must be a string/],
      [{ value: 'x'.repeat(1001) }, 413, /1001 bytes .* exceeds maxMessageSize 1000/],
      ['{"value":', 400, /JSON/i],
    ];
    for (const [body, status, message] of cases) {
      const r = await post(base, topic, body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(String(r.body.error), message);
    }
    const reads: [string, RegExp][] = [
      ['partition=3', /field partition must be in 0\.\.2/],
      ['partition=x', /field partition must be an integer/],
      ['offset=-4', /field offset must be in 0\.\./],
      ['limit=0', /field limit must be in 1\.\./],
      ['encoding=hex', /query field encoding must be "utf8" or "base64"/],
    ];
    for (const [query, message] of reads) {
      const r = await api(base, `/api/topics/${topic}/messages?${query}`);
      assert.equal(r.status, 400, query);
      assert.match(String(r.body.error), message);
    }
    assert.deepEqual((await api(base, `/api/topics/${topic}`)).body.partitions,
      [0, 1, 2].map((partition) => ({ partition, minOffset: 0, maxOffset: 0, sizeBytes: 0, segments: 0 })), 'nothing was stored');
  });

  it('refuses to browse from an offset inside a record', async () => {
    const topic = uniqueName('boundary');
    await post(base, topic, { value: 'abcdefghijklmnopqrstuvwxyz', partition: 0 });
    const r = await api(base, `/api/topics/${topic}/messages?partition=0&offset=3`);
    assert.equal(r.status, 400);
    assert.match(String(r.body.error), /field offset 3 is not the start of a record/);
  });

  it('lists topics with sizes and counters, and one topic with its partitions and config', async () => {
    const topic = uniqueName('listed');
    for (let i = 0; i < 3; i++) await post(base, topic, { value: 'abcd', partition: 1 });
    const list = await api(base, '/api/topics');
    const row = (list.body.topics as { topic: string }[]).find((t) => t.topic === topic);
    assert.deepEqual(row, { topic, partitions: 3, sizeBytes: 72, messagesIn: 3, bytesIn: 12, messagesOut: 0, bytesOut: 0 });
    const one = await api(base, `/api/topics/${topic}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.partitions, [
      { partition: 0, minOffset: 0, maxOffset: 0, sizeBytes: 0, segments: 0 },
      { partition: 1, minOffset: 0, maxOffset: 72, sizeBytes: 72, segments: 1 },
      { partition: 2, minOffset: 0, maxOffset: 0, sizeBytes: 0, segments: 0 },
    ]);
    const config = one.body.config as Record<string, unknown>;
    assert.equal(config.numPartitions, 3);
    assert.deepEqual(config.groupFilters, {});
  });

  it('returns the resolved configuration', async () => {
    const { body } = await api(base, '/api/config');
    assert.equal(body.file, null);
    const system = body.system as Record<string, unknown>;
    assert.equal(system.maxMessageSize, 1000);
    assert.equal(system.dataPath, tb.dataDir);
    assert.ok(Object.keys(body.topics as object).length > 0);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const r = await api(base, '/api/nothing-here');
    assert.deepEqual(r, { status: 404, body: { error: 'no route GET /api/nothing-here' } });
  });
});

describe('http/api on a broker without a wildcard topic', () => {
  let broker: Broker;
  let dir: { path: string; remove(): Promise<void> };
  let base: string;

  before(async () => {
    dir = await tempDir('metaq-http-api-strict-');
    broker = await startBroker(parseConfig(`[system]\nbrokerId=0\nserverPort=0\ndashboardHttpPort=0\ndataPath=${dir.path}\n` +
      '[zookeeper]\nzk.zkEnable=false\n[topic=known]\nnumPartitions=1\n'), { logger: pino({ level: 'silent' }) });
    base = `http://127.0.0.1:${broker.httpPort}`;
  });

  after(async () => {
    await broker?.close();
    await dir?.remove();
  });

  it('answers 404 naming an unknown topic on every topic route', async () => {
    for (const [path, init] of [
      ['/api/topics/unknown', undefined],
      ['/api/topics/unknown/messages', undefined],
      ['/api/topics/unknown/messages', { method: 'POST', body: { value: 'x' } }],
    ] as const) {
      const r = await api(base, path, init);
      assert.equal(r.status, 404, path);
      assert.match(String(r.body.error), /unknown topic "unknown"/);
    }
    assert.deepEqual((await api(base, '/api/topics')).body,
      { topics: [{ topic: 'known', partitions: 1, sizeBytes: 0, messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 }] });
  });
});

describe('http/metrics', () => {
  let tb: TestBroker;
  let base: string;

  before(async () => {
    tb = await startTestBroker({ 'system.longPollTimeoutMs': '60000' });
    base = `http://127.0.0.1:${tb.broker.httpPort}`;
  });

  after(async () => {
    await tb?.dispose();
  });

  it('counts messages and bytes in and out per topic by exactly what was produced and fetched', async () => {
    const topic = uniqueName('counted');
    const raw = await RawClient.connect(tb.port);
    try {
      const N = 7;
      for (let i = 0; i < N; i++) assert.equal((await raw.put(topic, 0, 'x'.repeat(10))).code, 200);
      await post(base, topic, { value: 'y'.repeat(10), partition: 0 });
      // One TCP get for the first 3 records and a cut 4th, then one HTTP get for the rest.
      const first = await raw.get(topic, 'g', 0, 0, 3 * 30 + 5);
      assert.equal(first.type, 'value');
      const rest = await fetch(`http://127.0.0.1:${tb.broker.httpPort}/get/0?topic=${topic}&partition=0&group=g&offset=90&maxsize=1000`);
      assert.equal((await rest.arrayBuffer()).byteLength, 5 * 30);
      const text = await metrics(base);
      assert.equal(sample(text, `metaq_messages_in_total{topic="${topic}"}`), N + 1);
      assert.equal(sample(text, `metaq_bytes_in_total{topic="${topic}"}`), (N + 1) * 10);
      assert.equal(sample(text, `metaq_messages_out_total{topic="${topic}"}`), N + 1);
      assert.equal(sample(text, `metaq_bytes_out_total{topic="${topic}"}`), 95 + 150);
      assert.equal(sample(text, `metaq_topic_size_bytes{topic="${topic}"}`), (N + 1) * 30);
      assert.equal(sample(text, 'metaq_connections'), 1);
      const stats = await api(base, '/api/stats');
      assert.deepEqual((stats.body.topics as Record<string, unknown>)[topic], { messagesIn: N + 1, bytesIn: (N + 1) * 10, messagesOut: N + 1, bytesOut: 245 });
      assert.equal(stats.body.connections, 1);
    } finally {
      await raw.close();
    }
  });

  it('observes every group-commit fsync in the latency histogram', async () => {
    const before = sample(await metrics(base), 'metaq_fsync_duration_seconds_count') ?? 0;
    await post(base, uniqueName('fsync'), { value: 'z', partition: 0 });
    const text = await metrics(base);
    const count = sample(text, 'metaq_fsync_duration_seconds_count')!;
    assert.ok(count > before, `count ${count} after ${before}`);
    assert.equal(sample(text, 'metaq_fsync_duration_seconds_bucket{le="+Inf"}'), count);
    assert.ok(sample(text, 'metaq_fsync_duration_seconds_sum')! > 0);
  });

  it('shows long-poll waiters while they wait and counts them', async () => {
    const topic = uniqueName('waiting');
    const before = sample(await metrics(base), 'metaq_long_poll_waits_total')!;
    const waiting = fetch(`${base}/get/0?topic=${topic}&partition=0&group=g&offset=0&maxsize=100`);
    await waitFor(async () => sample(await metrics(base), 'metaq_long_poll_waiting') === 1, { what: 'one parked get' });
    await post(base, topic, { value: 'go', partition: 0 });
    assert.equal((await waiting).status, 200);
    const text = await metrics(base);
    assert.equal(sample(text, 'metaq_long_poll_waiting'), 0);
    assert.equal(sample(text, 'metaq_long_poll_waits_total'), before + 1);
  });

  it('exports the default process metrics', async () => {
    const text = await metrics(base);
    assert.ok(sample(text, 'process_cpu_user_seconds_total')! > 0);
    assert.match(text, /^nodejs_heap_size_used_bytes /m);
  });

  it('reports what recovery cut from a torn tail after a restart', async () => {
    const topic = uniqueName('torn');
    await post(base, topic, { value: 'intact', partition: 0 });
    await tb.stop();
    const dir = join(tb.dataDir, `${topic}-0`);
    const [segment] = (await readdir(dir)).filter((f) => f.endsWith('.meta'));
    await appendFile(join(dir, segment!), Buffer.alloc(13, 0xff));
    tb = await tb.restart();
    base = `http://127.0.0.1:${tb.broker.httpPort}`;
    const text = await metrics(base);
    assert.equal(sample(text, 'metaq_recovery_truncated_bytes'), 13);
    assert.equal(sample(text, 'metaq_recovery_cuts'), 1);
    assert.ok(sample(text, 'metaq_recovery_partitions')! >= 1);
    assert.ok(sample(text, 'metaq_recovery_scanned_bytes')! >= 0);
    assert.equal(sample(text, `metaq_messages_in_total{topic="${topic}"}`), undefined, 'counters start again at 0');
  });
});
