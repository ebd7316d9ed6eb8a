import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { mergeMap, type Subscription } from 'rxjs';
import { createClient, type MetaqClient } from '../sdk/client/client.js';
import type { Delivery, Message } from '../sdk/message.js';
import { LocalFileOffsetStore } from '../sdk/offsets/local-file-offset-store.js';
import type { CommittedOffset, OffsetStore } from '../sdk/offsets/offset-store.js';
import { encodePayload, RECORD_HEADER_SIZE } from '../sdk/protocol/record.js';
import { crc32Masked } from '../sdk/protocol/record.js';
import { localIp } from '../sdk/consumer/consumer-options.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const P0 = { brokerId: 0, partition: 0 };

/** Puts `count` messages `<prefix>-<i>` on each listed partition (pipelined); returns their record sizes. */
async function produce(port: number, topic: string, partitions: readonly number[], count: number, prefix = 'm',
  attribute: (i: number) => string | null = () => null): Promise<number[]> {
  const raw = await RawClient.connect(port);
  const sizes: number[] = [];
  try {
    for (const p of partitions) {
      const puts: Promise<unknown>[] = [];
      for (let i = 0; i < count; i++) {
        const { data, flag } = encodePayload(Buffer.from(`${prefix}-${p}-${i}`), attribute(i));
        sizes.push(RECORD_HEADER_SIZE + data.length);
        puts.push(raw.put(topic, p, data, { flag, checksum: crc32Masked(data) }).then((r) => {
          if (r.code !== 200) throw new Error(`put answered ${r.code} ${r.body.toString()}`);
        }));
      }
      await Promise.all(puts);
    }
  } finally {
    await raw.close();
  }
  return sizes;
}

/** Collects deliveries and acks them at once (in next, synchronously). */
function collect(source: { subscribe: (o: { next: (d: Delivery) => void; error: (e: unknown) => void }) => Subscription },
  ack = true): { seen: Message[]; errors: unknown[]; sub: Subscription } {
  const seen: Message[] = [];
  const errors: unknown[] = [];
  const sub = source.subscribe({
    next: (d) => {
      seen.push(d.message);
      if (ack) d.ack();
    },
    error: (e) => errors.push(e),
  });
  return { seen, errors, sub };
}

/** An offset store in memory that can be told to forget commits (to make a group read the same messages again). */
class MemoryStore implements OffsetStore {
  readonly map = new Map<string, CommittedOffset>();
  /** Every commit, dropped or not. */
  readonly attempts = new Map<string, CommittedOffset>();
  dropCommits = false;
  async load(group: string, topic: string, p: { brokerId: number; partition: number }) {
    return this.map.get(`${group}/${topic}/${p.brokerId}-${p.partition}`);
  }
  async commit(group: string, offsets: readonly CommittedOffset[]) {
    for (const o of offsets) this.attempts.set(`${group}/${o.topic}/${o.partition.brokerId}-${o.partition.partition}`, o);
    if (this.dropCommits) return;
    for (const o of offsets) this.map.set(`${group}/${o.topic}/${o.partition.brokerId}-${o.partition.partition}`, o);
  }
  async close() {}
}

describe('sdk/consumer (against an in-process broker)', () => {
  let tb: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let client: MetaqClient;
  before(async () => {
    tb = await startTestBroker({ 'system.longPollTimeoutMs': '200', 'system.updateConsumerOffsets': 'true' });
    dir = await tempDir('metaq-consumer-');
    client = await createClient({
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      serverUrl: `meta://127.0.0.1:${tb.port}`, offsetsFile: join(dir.path, 'offsets.json'),
      recoverDir: join(dir.path, 'recover'),
    });
  });
  after(async () => {
    await client.close();
    await tb.dispose();
    await dir.remove();
  });

  it('consumes every message of every partition, in order per partition', async () => {
    const topic = uniqueName('all');
    await produce(tb.port, topic, [0, 1, 2, 3], 500);
    const consumer = client.consumer({ group: uniqueName('g'), maxFetchDelayMs: 100 });
    const { seen, errors, sub } = collect(consumer.messages$(topic));
    await waitFor(() => seen.length >= 2000 || errors.length > 0, { what: '2000 messages' });
    assert.deepEqual(errors, []);
    const byPartition = new Map<number, string[]>();
    for (const m of seen) {
      const list = byPartition.get(m.partition.partition) ?? [];
      list.push(m.payload.toString());
      byPartition.set(m.partition.partition, list);
    }
    for (let p = 0; p < 4; p++) {
      assert.deepEqual(byPartition.get(p), Array.from({ length: 500 }, (_, i) => `m-${p}-${i}`), `partition ${p}`);
    }
    sub.unsubscribe();
    await consumer.close();
  });

  it('commits on unsubscribe, and a new subscription resumes after the last ack with no loss and no duplicate', async () => {
    const topic = uniqueName('resume');
    await produce(tb.port, topic, [0, 1, 2, 3], 100);
    const group = uniqueName('g');
    const consumer = client.consumer({ group, maxFetchDelayMs: 100, dedupeCacheSize: 0 });
    const first = collect(consumer.messages$(topic));
    await waitFor(() => first.seen.length >= 150, { what: '150 messages' });
    first.sub.unsubscribe();
    const firstIds = new Set(first.seen.map((m) => m.id));
    const second = collect(consumer.messages$(topic));
    await waitFor(() => firstIds.size + second.seen.length >= 400, { what: 'the rest of the messages' });
    second.sub.unsubscribe();
    for (const m of second.seen) assert.ok(!firstIds.has(m.id), `message ${m.payload.toString()} delivered twice`);
    assert.equal(firstIds.size + second.seen.length, 400);
    await consumer.close();
  });

  it('commits only the contiguous acked prefix when acks come out of order', async () => {
    const topic = uniqueName('gap');
    const sizes = await produce(tb.port, topic, [0], 10);
    const store = LocalFileOffsetStore.forFile(join(dir.path, 'gap-offsets.json'));
    const group = uniqueName('g');
    const consumer = client.consumer({ group, offsetStore: store, partitionConcurrency: 10, maxFetchDelayMs: 100 });
    const held: Delivery[] = [];
    const sub = consumer.messages$(topic).pipe(mergeMap(async (d) => {
      if (d.message.partition.partition === 0) held.push(d);
      else d.ack();
    })).subscribe();
    await waitFor(() => held.length === 10, { what: '10 deliveries of partition 0' });
    for (const [i, d] of held.entries()) if (i !== 3) d.ack();
    await consumer.commit();
    const prefix = sizes.slice(0, 3).reduce((a, b) => a + b, 0);
    const c = await store.load(group, topic, P0);
    assert.equal(c?.offset, prefix, 'the watermark stops before the unacked 4th message');
    assert.equal(c?.msgId, held[2]!.message.id);
    held[3]!.ack();
    await consumer.commit();
    assert.equal((await store.load(group, topic, P0))?.offset, sizes.reduce((a, b) => a + b, 0));
    sub.unsubscribe();
    await consumer.close();
    await store.close();
  });

  it('hands out one message of a partition at a time with partitionConcurrency 1, across fetch boundaries', async () => {
    const topic = uniqueName('one-at-a-time');
    await produce(tb.port, topic, [0, 1], 300);
    // A small fetch size makes many fetches: the next one is answered while the last message of the previous one is
    // still being handled.
    const consumer = client.consumer({ group: uniqueName('g'), fetchSize: 512, maxFetchDelayMs: 100 });
    const busy = new Map<number, number>();
    let overlaps = 0;
    let total = 0;
    const sub = consumer.messages$(topic).subscribe((d) => {
      const p = d.message.partition.partition;
      if ((busy.get(p) ?? 0) > 0) overlaps++;
      busy.set(p, (busy.get(p) ?? 0) + 1);
      setTimeout(() => {
        busy.set(p, busy.get(p)! - 1);
        total++;
        d.ack();
      }, 1);
    });
    await waitFor(() => total >= 600, { what: '600 messages' });
    assert.equal(overlaps, 0, 'a second message of a partition was delivered before the first was acked');
    sub.unsubscribe();
    await consumer.close();
  });

  it('never has more than maxInFlight deliveries unacked', async () => {
    const topic = uniqueName('inflight');
    await produce(tb.port, topic, [0, 1, 2, 3], 300);
    const consumer = client.consumer({ group: uniqueName('g'), maxInFlight: 25, partitionConcurrency: 50, maxFetchDelayMs: 100 });
    let unacked = 0;
    let peak = 0;
    let total = 0;
    const sub = consumer.messages$(topic).subscribe((d) => {
      unacked++;
      total++;
      peak = Math.max(peak, unacked);
      setImmediate(() => {
        unacked--;
        d.ack();
      });
    });
    await waitFor(() => total >= 1200, { what: '1200 messages' });
    assert.equal(peak, 25, 'the bound is reached and never passed');
    sub.unsubscribe();
    await consumer.close();
  });

  it('grows the fetch size for a message larger than it, and shrinks back', async () => {
    const topic = uniqueName('large');
    const raw = await RawClient.connect(tb.port);
    const big = Buffer.alloc(200_000, 7);
    for (const body of [Buffer.from('small-1'), big, Buffer.from('small-2')]) {
      assert.equal((await raw.put(topic, 0, body)).code, 200);
    }
    await raw.close();
    const consumer = client.consumer({ group: uniqueName('g'), fetchSize: 1024, maxFetchDelayMs: 100 });
    const { seen, errors, sub } = collect(consumer.messages$(topic));
    await waitFor(() => seen.length >= 3 || errors.length > 0, { what: '3 messages' });
    assert.deepEqual(errors, []);
    assert.deepEqual(seen.map((m) => m.payload.length), [7, 200_000, 7]);
    assert.ok(seen[1]!.payload.equals(big));
    sub.unsubscribe();
    await consumer.close();
  });

  it('errors with a clear message when a record exceeds maxFetchSize', async () => {
    const topic = uniqueName('toolarge');
    const raw = await RawClient.connect(tb.port);
    assert.equal((await raw.put(topic, 0, Buffer.alloc(5000, 1))).code, 200);
    await raw.close();
    const consumer = client.consumer({ group: uniqueName('g'), fetchSize: 1024, maxFetchSize: 2048, maxFetchDelayMs: 100 });
    const { errors } = collect(consumer.messages$(topic));
    await waitFor(() => errors.length > 0, { what: 'the error' });
    assert.match(String(errors[0]), /5020 bytes exceeds the limit of 2048/);
    await consumer.close();
  });

  it('starts a new group at the end with startFrom latest, and at the first message with earliest', async () => {
    const topic = uniqueName('latest');
    await produce(tb.port, topic, [0, 1, 2, 3], 5, 'old');
    const store = new MemoryStore();
    const group = uniqueName('g');
    const latest = client.consumer({ group, startFrom: 'latest', offsetStore: store, maxFetchDelayMs: 100 });
    const l = collect(latest.messages$(topic));
    // The start offsets are committed at the first commit: once all four are, the subscription reads from the end.
    await waitFor(async () => {
      await latest.commit();
      return store.map.size === 4;
    }, { what: 'start offsets committed' });
    await produce(tb.port, topic, [0, 1, 2, 3], 2, 'new');
    await waitFor(() => l.seen.length >= 8, { what: '8 new messages' });
    assert.ok(l.seen.every((m) => m.payload.toString().startsWith('new-')));
    await latest.close();

    const earliest = client.consumer({ group: uniqueName('g'), startFrom: 'earliest', maxFetchDelayMs: 100 });
    const e = collect(earliest.messages$(topic));
    await waitFor(() => e.seen.length >= 28, { what: 'all 28 messages' });
    assert.equal(e.seen.filter((m) => m.payload.toString().startsWith('old-')).length, 20);
    await earliest.close();
  });

  it('follows a 301 from the broker and commits the moved offset', async () => {
    const topic = uniqueName('moved');
    const sizes = await produce(tb.port, topic, [0], 3);
    const end = sizes.reduce((a, b) => a + b, 0);
    const store = new MemoryStore();
    const group = uniqueName('g');
    await store.commit(group, [{ topic, partition: P0, offset: 1_000_000, msgId: -1n }]);
    const consumer = client.consumer({ group, offsetStore: store, maxFetchDelayMs: 100 });
    const { seen, sub } = collect(consumer.messages$(topic));
    await waitFor(async () => {
      await consumer.commit();
      return (await store.load(group, topic, P0))?.offset === end;
    }, { what: 'the moved offset committed' });
    await produce(tb.port, topic, [0], 1, 'after');
    await waitFor(() => seen.length === 1, { what: 'the message after the move' });
    assert.equal(seen[0]!.payload.toString(), 'after-0-0');
    sub.unsubscribe();
    await consumer.close();
  });

  it('acks without delivering the messages a filter rejects (a throwing filter rejects)', async () => {
    const topic = uniqueName('filter');
    const sizes = await produce(tb.port, topic, [0], 30, 'f', (i) => (i % 3 === 0 ? 'keep' : i % 3 === 1 ? 'drop' : 'boom'));
    const store = new MemoryStore();
    const group = uniqueName('g');
    const consumer = client.consumer({
      group, offsetStore: store, maxFetchDelayMs: 100,
      filter: (m) => {
        if (m.attribute === 'boom') throw new Error('filter failure');
        return m.attribute === 'keep';
      },
    });
    const { seen, sub } = collect(consumer.messages$(topic));
    await waitFor(async () => {
      await consumer.commit();
      return (await store.load(group, topic, P0))?.offset === sizes.reduce((a, b) => a + b, 0);
    }, { what: 'every message of partition 0 committed' });
    assert.deepEqual(seen.map((m) => m.payload.toString()), Array.from({ length: 10 }, (_, i) => `f-0-${i * 3}`));
    sub.unsubscribe();
    await consumer.close();
  });

  it('skips messages the consumer already processed when it reads them again', async () => {
    const topic = uniqueName('dedupe');
    const sizes = await produce(tb.port, topic, [0, 1], 20);
    const end = sizes.slice(0, 20).reduce((a, b) => a + b, 0);
    const store = new MemoryStore();
    store.dropCommits = true; // every subscription starts again from the first message
    const consumer = client.consumer({ group: uniqueName('g'), offsetStore: store, maxFetchDelayMs: 100 });
    const first = collect(consumer.messages$(topic));
    await waitFor(() => first.seen.length >= 40, { what: '40 messages' });
    first.sub.unsubscribe();
    await consumer.commit(); // waits for the final commit of the first subscription
    store.attempts.clear();
    const second = collect(consumer.messages$(topic));
    // The second read is over when it tried to commit the end of both partitions.
    await waitFor(async () => {
      await consumer.commit();
      return [...store.attempts.values()].filter((c) => c.offset === end).length === 2;
    }, { what: 'the second read' });
    assert.equal(second.seen.length, 0);
    second.sub.unsubscribe();
    await consumer.close();
  });

  it('with the message-id cache, a new consumer of the group skips what an earlier one processed', async () => {
    const topic = uniqueName('idcache');
    const sizes = await produce(tb.port, topic, [0, 1], 20);
    const end = sizes.slice(0, 20).reduce((a, b) => a + b, 0);
    const group = uniqueName('g');
    /** Reads the topic from the start with a fresh consumer until it acked the end of both partitions. */
    const readAll = async (dedupeCacheSize: number): Promise<number> => {
      const store = new MemoryStore();
      store.dropCommits = true; // each consumer starts from the first message
      const consumer = client.consumer({ group, offsetStore: store, dedupeCacheSize, maxFetchDelayMs: 100 });
      const read = collect(consumer.messages$(topic));
      await waitFor(async () => {
        await consumer.commit();
        return [...store.attempts.values()].filter((c) => c.offset === end).length === 2;
      }, { what: `a read with cache size ${dedupeCacheSize}` });
      read.sub.unsubscribe();
      await consumer.close();
      return read.seen.length;
    };
    assert.equal(await readAll(4096), 40, 'the first consumer gets everything');
    assert.equal(await readAll(4096), 0, 'the next one skips every id the group processed');
    assert.equal(await readAll(0), 40, 'without the cache, everything again');
  });

  it('redelivers a nacked message in line exactly maxFetchRetries times, then through the recover store', async () => {
    const topic = uniqueName('nack');
    const sizes = await produce(tb.port, topic, [0], 5);
    const store = new MemoryStore();
    const group = uniqueName('g');
    const consumer = client.consumer({
      group, offsetStore: store, maxFetchRetries: 2, maxFetchDelayMs: 50, recoverIntervalMs: 100,
    });
    const log: string[] = [];
    const sub = consumer.messages$(topic).subscribe((d) => {
      const text = d.message.payload.toString();
      log.push(`${text}#${d.message.redeliveries}`);
      if (text === 'm-0-1' && log.filter((l) => l.startsWith('m-0-1#')).length <= 3) d.nack(new Error('handler failed'));
      else d.ack();
    });
    await waitFor(async () => {
      await consumer.commit();
      return log.length === 8 && (await store.load(group, topic, P0))?.offset === sizes.reduce((a, b) => a + b, 0);
    }, { what: 'every message handled and committed' });
    assert.deepEqual(log, [
      'm-0-0#0', 'm-0-1#0', 'm-0-1#1', 'm-0-1#2', // in line: the partition waits
      'm-0-2#0', 'm-0-3#0', 'm-0-4#0', // then moves on
      'm-0-1#3', // redelivered from the recover store (its 4th delivery), and acked
    ]);
    sub.unsubscribe();
    await consumer.close();
  });

  it('acks on a listener handler\'s success and redelivers on a throw or a rejection', async () => {
    const topic = uniqueName('listener');
    const sizes = await produce(tb.port, topic, [0], 6);
    const store = new MemoryStore();
    const group = uniqueName('g');
    const consumer = client.consumer({ group, offsetStore: store, maxFetchDelayMs: 50 });
    const calls: string[] = [];
    const sub = consumer.subscribe(topic, (m) => {
      const text = m.payload.toString();
      calls.push(text);
      const first = calls.filter((c) => c === text).length === 1;
      if (text === 'm-0-2' && first) throw new Error('sync failure');
      if (text === 'm-0-4' && first) return Promise.reject(new Error('async failure'));
      return text === 'm-0-5' ? Promise.resolve() : undefined;
    });
    await waitFor(() => calls.length === 8, { what: '8 handler calls' });
    await sub.close();
    assert.deepEqual(calls, ['m-0-0', 'm-0-1', 'm-0-2', 'm-0-2', 'm-0-3', 'm-0-4', 'm-0-4', 'm-0-5']);
    assert.equal((await store.load(group, topic, P0))?.offset, sizes.reduce((a, b) => a + b, 0), 'close committed');
    await consumer.close();
  });

  it('leaves nothing running after close: a process that consumed and closed exits by itself', async () => {
    const topic = uniqueName('exit');
    await produce(tb.port, topic, [0], 3);
    const script = join(dir.path, 'consume-and-close.mts');
    const sdk = join(import.meta.dirname, '..', 'sdk');
    await writeFile(script, `
      import { createClient } from ${JSON.stringify(join(sdk, 'client', 'client.js'))};
      const client = await createClient({ serverUrl: 'meta://127.0.0.1:${tb.port}',
        offsetsFile: ${JSON.stringify(join(dir.path, 'exit-offsets.json'))}, recoverDir: ${JSON.stringify(join(dir.path, 'exit-recover'))} });
      const consumer = client.consumer({ group: 'exit-group' });
      let n = 0;
      await new Promise((resolve) => consumer.subscribe(${JSON.stringify(topic)}, () => { if (++n === 3) resolve(undefined); }));
      await consumer.close();
      await client.close();
      console.log('consumed ' + n);
    `);
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    assert.equal(signal, null, 'the child had to be killed: something kept it alive after close()');
    assert.equal(code, 0);
    assert.match(out, /consumed 3/);
  });

  it('names the broadcast group after the host and keeps its offsets in the local file', async () => {
    const topic = uniqueName('broadcast');
    await produce(tb.port, topic, [0], 3);
    const group = uniqueName('g');
    const consumer = client.consumer({ group, broadcast: true, maxFetchDelayMs: 100 });
    assert.equal(consumer.group, `${group}-${localIp().replace(/[.:]/g, '-')}`);
    const { seen, sub } = collect(consumer.messages$(topic));
    await waitFor(() => seen.length === 3, { what: '3 messages' });
    sub.unsubscribe();
    await consumer.close();
    const store = LocalFileOffsetStore.forFile(join(dir.path, 'offsets.json'));
    assert.ok((await store.load(consumer.group, topic, P0))?.offset ?? 0 > 0, 'committed under the broadcast group');
    await store.close();
  });
});
