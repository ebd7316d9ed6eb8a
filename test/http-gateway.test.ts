/**
 * MetaQ's HTTP routes (`/put`, `/get`, `/offset`) on a real broker, driven with plain `fetch`: each answer code
 * that can be provoked, field validation, agreement with the TCP protocol, long polls and shutdown, and a taken
 * HTTP port refusing the start.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startBroker, type Broker } from '../broker/broker.js';
import { parseConfig } from '../broker/config/server-config.js';
import { ConfigError } from '../sdk/errors.js';
import { crc32Masked, decodeMessageSet, encodePayload } from '../sdk/protocol/record.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A broker accepting only the topic `only` (2 partitions): no wildcard section, so other topics are unknown. */
async function strictBroker(dataPath: string, only: string): Promise<Broker> {
  return startBroker(parseConfig(`[system]\nbrokerId=0\nserverPort=0\ndashboardHttpPort=0\ndataPath=${dataPath}\n` +
    `[zookeeper]\nzk.zkEnable=false\n[topic=${only}]\nnumPartitions=2\n`), { logger });
}

async function put(base: string, topic: string, partition: number | string, body: Buffer | string,
  extra: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  const q = new URLSearchParams({ topic, partition: String(partition), flag: '0', length: String(data.length), ...extra });
  const r = await fetch(`${base}/put/0?${q}`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } });
  return { status: r.status, text: await r.text() };
}

async function get(base: string, query: Record<string, string | number>, path = '/get/0'): Promise<{ status: number; body: Buffer }> {
  const q = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  const r = await fetch(`${base}${path}?${q}`);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}

describe('http/metaq routes', () => {
  let tb: TestBroker;
  let base: string;
  let raw: RawClient;

  before(async () => {
    tb = await startTestBroker({ 'system.maxMessageSize': '1000', 'system.longPollTimeoutMs': '60000' });
    base = `http://127.0.0.1:${tb.broker.httpPort}`;
    raw = await RawClient.connect(tb.port);
  });

  after(async () => {
    await raw?.close();
    await tb?.dispose();
  });

  it('stores a put and answers msgId partition offset, which a TCP get then returns', async () => {
    const topic = uniqueName('put');
    const first = await put(base, topic, 1, 'hello');
    assert.equal(first.status, 200);
    const [id, partition, offset] = first.text.split(' ');
    assert.match(id!, /^\d+$/);
    assert.equal(partition, '1');
    assert.equal(offset, '0');
    const second = await put(base, topic, 1, 'world', { checksum: String(crc32Masked(Buffer.from('world'))) });
    assert.equal(second.status, 200);
    assert.equal(second.text.split(' ')[2], String(20 + 5));
    const tcp = await raw.get(topic, 'g', 1, 0);
    assert.equal(tcp.type, 'value');
    const set = decodeMessageSet(tcp.body, { baseOffset: 0 });
    assert.deepEqual(set.messages.map((m) => [m.id.toString(), m.payload.toString()]),
      [[id, 'hello'], [second.text.split(' ')[0], 'world']]);
  });

  it('accepts the path without a broker id and any content type, as MetaQ does', async () => {
    const topic = uniqueName('ctype');
    const r = await fetch(`${base}/put?topic=${topic}&partition=0&flag=0&length=3`, { method: 'POST', body: 'abc',
      headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal((await get(base, { topic, partition: 0, group: 'g', offset: 0, maxsize: 100 }, '/get')).body.subarray(20).toString(), 'abc');
  });

  it('stores the attribute flag and DATA verbatim', async () => {
    const topic = uniqueName('attr');
    const { data, flag } = encodePayload(Buffer.from('payload'), 'tag-1');
    const r = await put(base, topic, 0, data, { flag: String(flag) });
    assert.equal(r.status, 200);
    const g = await get(base, { topic, partition: 0, group: 'g', offset: 0, maxsize: 1000 });
    const [m] = decodeMessageSet(g.body, { baseOffset: 0 }).messages;
    assert.equal(m?.attribute, 'tag-1');
    assert.equal(m?.payload.toString(), 'payload');
  });

  it('refuses a bad checksum with 500 and stores nothing', async () => {
    const topic = uniqueName('crc');
    const r = await put(base, topic, 0, 'abc', { checksum: String(crc32Masked(Buffer.from('abd'))) });
    assert.equal(r.status, 500);
    assert.match(r.text, /^Put message to \[broker 'meta:\/\/.*'\] \[partition '.*-0'\] failed\.Detail:Checksum failure/);
    const ok = await put(base, topic, 0, 'abc');
    assert.equal(ok.text.split(' ')[2], '0', 'the refused put took no offset');
  });

  it('answers a put to a partition out of range with MetaQ\'s 500 wrong partition', async () => {
    const r = await put(base, uniqueName('range'), 99, 'x');
    assert.equal(r.status, 500);
    assert.match(r.text, /failed\.Detail:wrong partition 99/);
  });

  it('answers an oversized put with MetaQ\'s 500 and keeps the log as it was', async () => {
    const topic = uniqueName('big');
    assert.equal((await put(base, topic, 0, Buffer.alloc(1000, 1))).status, 200);
    for (const size of [1001, 100_000]) {
      const r = await put(base, topic, 0, Buffer.alloc(size, 2));
      assert.equal(r.status, 500, `${size} bytes`);
      assert.match(r.text, /exceeds maxMessageSize/);
    }
    const after = await put(base, topic, 0, 'small');
    assert.equal(after.text.split(' ')[2], String(1020));
  });

  it('names the field of every malformed put', async () => {
    const topic = uniqueName('bad');
    const cases: [Record<string, string>, RegExp][] = [
      [{ partition: '0', flag: '0', length: '1' }, /missing query field topic/],
      [{ topic, flag: '0', length: '1' }, /missing query field partition/],
      [{ topic, partition: 'one', flag: '0', length: '1' }, /field partition must be an integer/],
      [{ topic, partition: '0', flag: '1.5', length: '1' }, /field flag must be an integer/],
      [{ topic, partition: '0', flag: '0' }, /missing query field length/],
      [{ topic, partition: '0', flag: '0', length: '2' }, /field length is 2 but the body has 1 bytes/],
      [{ topic, partition: '0', flag: '0', length: '1', checksum: 'abc' }, /field checksum must be an integer/],
    ];
    for (const [query, expected] of cases) {
      const r = await fetch(`${base}/put/0?${new URLSearchParams(query)}`, { method: 'POST', body: 'x' });
      assert.equal(r.status, 400, JSON.stringify(query));
      assert.match(await r.text(), expected);
    }
    assert.equal((await put(base, topic, 0, 'x')).text.split(' ')[2], '0', 'none of them stored anything');
  });

  it('answers get with 400 for maxsize <= 0, 301 past the end, 404 at the end for the browser group', async () => {
    const topic = uniqueName('codes');
    await put(base, topic, 0, 'abc');
    const q = { topic, partition: 0, group: 'g', offset: 0 };
    const bad = await get(base, { ...q, maxsize: 0 });
    assert.deepEqual([bad.status, bad.body.toString()], [400, 'Bad request,invalid max size:0']);
    const moved = await get(base, { ...q, offset: Number.MAX_SAFE_INTEGER, maxsize: 100 });
    assert.deepEqual([moved.status, moved.body.toString()], [301, '23']);
    const end = await get(base, { ...q, group: 'Just_for_Browser', offset: 23, maxsize: 100 });
    assert.deepEqual([end.status, end.body.toString()], [404, 'Could not find message at position 23']);
    const missing = await get(base, { topic, partition: 0, offset: 0, maxsize: 100 });
    assert.equal(missing.status, 400);
    assert.match(missing.body.toString(), /missing query field group/);
    const negative = await get(base, { ...q, offset: -1, maxsize: 100 });
    assert.equal(negative.status, 400);
    assert.match(negative.body.toString(), /field offset must be in 0\.\./);
  });

  it('returns a byte window that may cut the last record, as the TCP get', async () => {
    const topic = uniqueName('window');
    for (const v of ['one', 'two', 'three']) await put(base, topic, 0, v);
    const http = await get(base, { topic, partition: 0, group: 'g', offset: 23, maxsize: 30 });
    const tcp = await raw.get(topic, 'g', 0, 23, 30);
    assert.equal(http.status, 200);
    assert.equal(http.body.length, 30);
    assert.deepEqual(http.body, tcp.body);
  });

  it('long-polls a get at the end of the log until a put arrives', async () => {
    const topic = uniqueName('poll');
    const waiting = get(base, { topic, partition: 0, group: 'g', offset: 0, maxsize: 100 });
    await waitFor(async () => (await raw.stats('')).includes('long_polls 1'), { what: 'the HTTP get to park' });
    assert.equal((await put(base, topic, 0, 'wake')).status, 200);
    const r = await waiting;
    assert.equal(r.status, 200);
    assert.equal(r.body.subarray(20).toString(), 'wake');
  });

  it('answers offset with the nearest offset, and 400 naming a bad field', async () => {
    const topic = uniqueName('offset');
    await put(base, topic, 0, 'abc');
    const r = await get(base, { topic, partition: 0, group: 'g', offset: 5 }, '/offset/0');
    assert.deepEqual([r.status, r.body.toString()], [200, '0']);
    const past = await get(base, { topic, partition: 0, group: 'g', offset: 500 }, '/offset/0');
    assert.deepEqual([past.status, past.body.toString()], [200, '23']);
    const bad = await get(base, { topic, partition: 0, group: 'g', offset: 'x' }, '/offset/0');
    assert.equal(bad.status, 400);
    assert.match(bad.body.toString(), /field offset must be an integer/);
  });

  it('keeps serving TCP clients after every refused HTTP request', async () => {
    const r = await raw.put(uniqueName('alive'), 0, 'still here');
    assert.equal(r.code, 200);
  });
});

describe('http/metaq routes on a broker without a wildcard topic', () => {
  let broker: Broker;
  let dir: { path: string; remove(): Promise<void> };
  let base: string;

  before(async () => {
    dir = await tempDir('metaq-http-strict-');
    broker = await strictBroker(dir.path, 'known');
    base = `http://127.0.0.1:${broker.httpPort}`;
  });

  after(async () => {
    await broker?.close();
    await dir?.remove();
  });

  it('answers a put to an unknown topic with MetaQ\'s 500 and a get or offset with 404', async () => {
    const p = await put(base, 'unknown', 0, 'x');
    assert.equal(p.status, 500);
    assert.match(p.text, /failed\.Detail:The server do not accept topic unknown/);
    const g = await get(base, { topic: 'unknown', partition: 0, group: 'g', offset: 0, maxsize: 100 });
    assert.deepEqual([g.status, g.body.toString()], [404, 'The topic `unknown` in partition `0` is not exists']);
    const o = await get(base, { topic: 'unknown', partition: 0, group: 'g', offset: 0 }, '/offset/0');
    assert.equal(o.status, 404);
    assert.equal((await put(base, 'known', 1, 'x')).status, 200);
  });
});

describe('http/server lifecycle', () => {
  it('answers a parked HTTP get at once when the broker closes', async () => {
    const tb = await startTestBroker({ 'system.longPollTimeoutMs': '600000' });
    try {
      const base = `http://127.0.0.1:${tb.broker.httpPort}`;
      const waiting = get(base, { topic: uniqueName('close'), partition: 0, group: 'g', offset: 0, maxsize: 100 });
      const raw = await RawClient.connect(tb.port);
      await waitFor(async () => (await raw.stats('')).includes('long_polls 1'), { what: 'the HTTP get to park' });
      await raw.close();
      const t0 = Date.now();
      await tb.stop();
      const r = await waiting;
      assert.equal(r.status, 404);
      assert.ok(Date.now() - t0 < 10_000, `close took ${Date.now() - t0} ms`);
    } finally {
      await tb.dispose();
    }
  });

  it('refuses to start on a taken HTTP port with a config error naming the port', async () => {
    const first = await startTestBroker();
    try {
      const taken = first.broker.httpPort;
      await assert.rejects(startTestBroker({ 'system.dashboardHttpPort': String(taken) }), (e: unknown) =>
        e instanceof ConfigError && e.message.includes(`dashboardHttpPort ${taken}`) && e.message.includes('EADDRINUSE'));
      const again = await startTestBroker();
      await again.dispose();
    } finally {
      await first.dispose();
    }
  });
});
