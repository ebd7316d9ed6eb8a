import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { decodeMessageSet, encodeRecord, RECORD_HEADER_SIZE } from '../sdk/protocol/record.js';
import { parsePutResult } from '../sdk/protocol/message-id.js';
import { RawClient, bodyText } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

/** Sends raw bytes on a fresh socket and collects everything until the broker closes it or `quietMs` pass. */
async function exchange(port: number, bytes: string | Buffer, untilBytes: number): Promise<Buffer> {
  const s = connect({ port, host: '127.0.0.1' });
  await once(s, 'connect');
  const chunks: Buffer[] = [];
  let total = 0;
  const done = new Promise<void>((resolve) => {
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      total += c.length;
      if (total >= untilBytes) resolve();
    });
    s.on('close', () => resolve());
  });
  s.write(bytes);
  await done;
  s.destroy();
  return Buffer.concat(chunks);
}

describe('broker protocol (in-process broker, plain sockets)', () => {
  let tb: TestBroker;
  let client: RawClient;

  before(async () => {
    tb = await startTestBroker({ 'system.longPollTimeoutMs': '400', 'system.maxMessageSize': '4096' });
    client = await RawClient.connect(tb.port);
  });
  after(async () => {
    await client.close();
    await tb.dispose();
  });

  it('answers a put from a plain socket exactly as MetaQ does', async () => {
    const topic = uniqueName('plain');
    const reply = (await exchange(tb.port, `put ${topic} 0 5 0 -1 1\r\nhello`, 30)).toString('latin1');
    const m = /^result 200 (\d+) 1\r\n(-?\d+) 0 0$/.exec(reply);
    assert.ok(m, `unexpected reply ${JSON.stringify(reply)}`);
    assert.equal(Number(m[1]), reply.length - reply.indexOf('\n') - 1);
  });

  it('stores the record in MetaQ format and serves it back with get', async () => {
    const topic = uniqueName('roundtrip');
    const r = await client.put(topic, 1, 'hello');
    assert.equal(r.code, 200);
    const { id, partition, offset } = parsePutResult(bodyText(r));
    assert.equal(partition, 1);
    assert.equal(offset, 0);
    const v = await client.get(topic, 'g', 1, 0);
    assert.equal(v.type, 'value');
    assert.deepEqual(v.body, encodeRecord(id, 0, Buffer.from('hello')));
  });

  it('accepts the old put form without checksum', async () => {
    const topic = uniqueName('legacy');
    const opaque = client.nextOpaque();
    const r = await client.request(`put ${topic} 0 5 0 ${opaque}\r\nhello`, opaque);
    assert.equal(r.type === 'result' && r.code, 200);
  });

  it('answers pipelined puts with contiguous increasing offsets', async () => {
    const topic = uniqueName('pipeline');
    const bodies = Array.from({ length: 2000 }, (_, i) => Buffer.alloc(10 + (i % 90), i % 251));
    const results = await Promise.all(bodies.map((b) => client.put(topic, 2, b)));
    let expected = 0;
    let lastId = -1n;
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 200);
      const p = parsePutResult(bodyText(r));
      assert.equal(p.offset, expected, `put ${i}`);
      assert.ok(p.id > lastId, 'ids increase');
      lastId = p.id;
      expected += RECORD_HEADER_SIZE + bodies[i]!.length;
    }
    const v = await client.get(topic, 'g', 2, 0, 1024 * 1024);
    const set = decodeMessageSet(v.body, { baseOffset: 0 });
    assert.equal(set.messages.length, bodies.length);
    assert.deepEqual(set.messages.map((m) => m.payload), bodies);
  });

  it('refuses a wrong checksum with 500, stores nothing, and keeps the connection usable', async () => {
    const topic = uniqueName('crc');
    const bad = await client.put(topic, 0, 'hello', { checksum: 12345 });
    assert.equal(bad.code, 500);
    assert.match(bodyText(bad), /Checksum failure/);
    const good = await client.put(topic, 0, 'hello');
    assert.equal(good.code, 200);
    assert.equal(parsePutResult(bodyText(good)).offset, 0, 'the bad put left no bytes behind');
  });

  it('refuses wrong partitions and oversized messages with a clear error', async () => {
    const topic = uniqueName('limits');
    const wrong = await client.put(topic, 99, 'x');
    assert.equal(wrong.code, 500);
    assert.match(bodyText(wrong), /wrong partition 99/);
    const big = await client.put(topic, 0, Buffer.alloc(5000));
    assert.equal(big.code, 500);
    assert.match(bodyText(big), /exceeds maxMessageSize 4096/);
    assert.equal((await client.put(topic, 0, 'after')).code, 200);
  });

  it('answers a malformed frame with result 400 and closes the connection', async () => {
    const reply = (await exchange(tb.port, 'bogus command\r\n', 1 << 20)).toString('latin1');
    assert.match(reply, /^result 400 \d+ 0\r\nUnknown command/);
  });

  it('answers get errors as MetaQ: 400 bad maxSize, 301 past the end for Long.MAX_VALUE, 404 for unknown', async () => {
    const topic = uniqueName('get-errors');
    await client.put(topic, 0, 'one');
    const bad = await client.get(topic, 'g', 0, 0, 0);
    assert.equal(bad.type === 'result' && bad.code, 400);
    const opaque = client.nextOpaque();
    const max = await client.request(`get ${topic} g 0 9223372036854775807 1024 ${opaque}\r\n`, opaque);
    assert.equal(max.type === 'result' && max.code, 301);
    assert.equal(bodyText(max), String(RECORD_HEADER_SIZE + 3));
    const unknown = await client.get(topic, 'g', 77, 0);
    assert.equal(unknown.type === 'result' && unknown.code, 404);
  });

  it('cuts the last record of a small window, and the client sees a truncated tail', async () => {
    const topic = uniqueName('window');
    for (let i = 0; i < 3; i++) await client.put(topic, 0, Buffer.alloc(100, i));
    const v = await client.get(topic, 'g', 0, 0, 200);
    assert.equal(v.body.length, 200);
    const set = decodeMessageSet(v.body, { baseOffset: 0 });
    assert.equal(set.messages.length, 1);
    assert.equal(set.truncatedTail, true);
    assert.equal(set.bytesConsumed, 120);
  });

  it('long-polls a get at the end of the log and answers as soon as data arrives', async () => {
    const topic = uniqueName('longpoll');
    const first = await client.put(topic, 0, 'a');
    const end = RECORD_HEADER_SIZE + 1;
    assert.equal(parsePutResult(bodyText(first)).offset, 0);
    const waiting = client.get(topic, 'g', 0, end);
    await waitFor(async () => (await client.stats()).includes('long_polls 1'), { what: 'the get to be parked' });
    const producer = await RawClient.connect(tb.port);
    await producer.put(topic, 0, 'b');
    await producer.close();
    const v = await waiting;
    assert.equal(v.type, 'value');
    assert.equal(decodeMessageSet(v.body, { baseOffset: end }).messages[0]?.payload.toString(), 'b');
  });

  it('answers 404 when the long poll times out', async () => {
    const topic = uniqueName('timeout');
    await client.put(topic, 0, 'a');
    const started = Date.now();
    const r = await client.get(topic, 'g', 0, RECORD_HEADER_SIZE + 1);
    assert.equal(r.type === 'result' && r.code, 404);
    assert.ok(Date.now() - started >= 350, 'waited for the long poll');
  });

  it('answers offset with the start of the segment holding it', async () => {
    const topic = uniqueName('offset');
    await client.put(topic, 0, 'abc');
    const r = await client.offset(topic, 'g', 0, 10);
    assert.equal(bodyText(r), '0');
  });

  it('answers version and stats, and quit closes the connection without a reply', async () => {
    assert.match(await client.version(), /^\d+\.\d+\.\d+/);
    const stats = await client.stats();
    assert.match(stats, /^STATS\r\n/);
    assert.match(stats, /cmd_put \d+/);
    assert.match(stats, /END\r\n$/);
    const q = await RawClient.connect(tb.port);
    q.send('quit\r\n');
    await q.closed;
    assert.equal(q.received.length, 0);
  });
});

describe('broker restart', () => {
  it('keeps acknowledged messages across a graceful restart and continues the offsets', async () => {
    let tb = await startTestBroker();
    try {
      const topic = uniqueName('restart');
      let c = await RawClient.connect(tb.port);
      const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => c.put(topic, 0, `m${i}`)));
      const last = parsePutResult(bodyText(acks[99]!));
      await c.close();
      tb = await tb.restart();
      c = await RawClient.connect(tb.port);
      const next = parsePutResult(bodyText(await c.put(topic, 0, 'after')));
      assert.equal(next.offset, last.offset + RECORD_HEADER_SIZE + 3);
      assert.ok(next.id > last.id);
      const v = await c.get(topic, 'g', 0, 0);
      const set = decodeMessageSet(v.body, { baseOffset: 0 });
      assert.deepEqual(set.messages.map((m) => m.payload.toString()), [...acks.map((_, i) => `m${i}`), 'after']);
      await c.close();
    } finally {
      await tb.dispose();
    }
  });

  it('answers every put it received before a graceful shutdown, and each answered put is stored', async () => {
    let tb = await startTestBroker();
    const topic = uniqueName('shutdown');
    const c = await RawClient.connect(tb.port);
    const sends = Array.from({ length: 3000 }, (_, i) => c.put(topic, i % 4, `s${i}`).then((r) => r, () => undefined));
    await waitFor(() => c.received.length > 0, { what: 'the first replies' });
    await tb.stop();
    const settled = await Promise.all(sends);
    const ok = settled.filter((r) => r?.code === 200).map((r) => parsePutResult(bodyText(r!)));
    assert.ok(ok.length > 0);
    tb = await tb.restart();
    try {
      const reader = await RawClient.connect(tb.port);
      const stored = new Set<string>();
      for (let p = 0; p < 4; p++) {
        const v = await reader.get(topic, 'g', p, 0);
        if (v.type === 'value') for (const m of decodeMessageSet(v.body, { baseOffset: 0 }).messages) stored.add(m.id.toString());
      }
      for (const a of ok) assert.ok(stored.has(a.id.toString()), `acked ${a.id} is stored`);
      await reader.close();
    } finally {
      await tb.dispose();
    }
  });
});
