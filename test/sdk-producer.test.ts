import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { ClientContext, Closeable } from '../sdk/client/client-context.js';
import type { Link } from '../sdk/cluster/broker-router.js';
import { DirectRouter } from '../sdk/cluster/direct-router.js';
import { CompressionTypes, compressionOfFlag, decompressPayload } from '../sdk/codec/compression.js';
import { FLAG_ATTRIBUTE, crc32Masked, decodeMessageSet, type DecodedMessage } from '../sdk/protocol/record.js';
import { encodePut } from '../sdk/protocol/encode.js';
import { BrokerLink } from '../sdk/network/broker-link.js';
import { Producer } from '../sdk/producer/producer.js';
import { sendAll } from '../sdk/producer/send-all.js';
import type { Partition, ProducerRecord, SendResult } from '../sdk/message.js';
import { startBroker } from '../broker/broker.js';
import { parseConfig } from '../broker/config/server-config.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { RawClient } from './harness/raw-client.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A client context over a real link to `port`, as createClient builds it; `close()` closes what it owns. */
async function connectContext(port: number, wrap?: (link: Link) => Link):
Promise<{ ctx: ClientContext; close(): Promise<void> }> {
  const link = new BrokerLink({ host: '127.0.0.1', port }, { logger });
  await link.whenConnected();
  const w = wrap?.(link);
  const router = await DirectRouter.start(w === undefined ? link : Object.assign(w, { close: () => link.close() }));
  const owned = new Set<Closeable>();
  let closing = false;
  const ctx: ClientContext = {
    router, logger,
    options: { requestTimeoutMs: 10_000, recoverDir: '/nonexistent', offsetsFile: '/nonexistent' },
    get closing() { return closing; },
    own(r) { owned.add(r); return () => { owned.delete(r); }; },
  };
  return {
    ctx,
    close: async () => {
      closing = true;
      for (const r of [...owned].reverse()) await r.close();
      await router.close();
    },
  };
}

/** Every message of a partition, read with raw `get`s (the broker's long poll is off in these tests). */
async function readPartition(raw: RawClient, topic: string, partition: number): Promise<DecodedMessage[]> {
  const out: DecodedMessage[] = [];
  let offset = 0;
  for (;;) {
    const r = await raw.get(topic, 'reader', partition, offset);
    if (r.type !== 'value') return out;
    const set = decodeMessageSet(r.body, { baseOffset: offset });
    out.push(...set.messages);
    if (set.bytesConsumed === 0) return out;
    offset += set.bytesConsumed;
  }
}

describe('sdk/producer (against an in-process broker)', () => {
  let tb: TestBroker;
  let raw: RawClient;
  let client: { ctx: ClientContext; close(): Promise<void> };
  before(async () => {
    tb = await startTestBroker({ 'system.longPollTimeoutMs': '0', 'system.maxMessageSize': '4096' });
    raw = await RawClient.connect(tb.port);
    client = await connectContext(tb.port);
  });
  after(async () => {
    await client.close();
    await raw.close();
    await tb.dispose();
  });

  it('answers each send with the id and byte offset the broker stored it at', async () => {
    const producer = new Producer(client.ctx);
    const topic = uniqueName('offsets');
    const values = ['a', 'bb', 'ccc'];
    const results: SendResult[] = [];
    for (const value of values) results.push(await producer.send({ topic, value, partition: 2 }));
    assert.deepEqual(results.map((r) => r.offset), [0, 21, 43]);
    assert.deepEqual(results.map((r) => r.partition), [0, 1, 2].map(() => ({ brokerId: 0, partition: 2 })));
    const stored = await readPartition(raw, topic, 2);
    assert.deepEqual(stored.map((m) => m.id), results.map((r) => r.id));
    assert.deepEqual(stored.map((m) => m.payload.toString()), values);
    assert.ok(results[0]!.id < results[1]!.id && results[1]!.id < results[2]!.id, 'ids increase');
    await producer.close();
  });

  it("goes round-robin as MetaQ: partitions 1, 2, 3, 0, 1", async () => {
    const producer = new Producer(client.ctx);
    const topic = uniqueName('rr');
    const seq: number[] = [];
    for (let i = 0; i < 5; i++) seq.push((await producer.send({ topic, value: `m${i}` })).partition.partition);
    assert.deepEqual(seq, [1, 2, 3, 0, 1]);
    await producer.close();
  });

  it('keeps every key on one partition and in send order with the hash selector', async () => {
    const producer = new Producer<string>(client.ctx, { partitioner: 'hash' });
    const topic = uniqueName('hash');
    const records = Array.from({ length: 400 }, (_, i) => ({ topic, key: `key-${i % 7}`, value: `key-${i % 7}:${i}` }));
    const results = await Promise.all(records.map((r) => producer.send(r)));
    const partitionOfKey = new Map<string, number>();
    for (const [i, r] of results.entries()) {
      const key = records[i]!.key;
      const known = partitionOfKey.get(key) ?? r.partition.partition;
      assert.equal(r.partition.partition, known, `${key} moved partitions`);
      partitionOfKey.set(key, known);
    }
    assert.ok(new Set(partitionOfKey.values()).size > 1, 'seven keys all hashed to one partition');
    for (let p = 0; p < 4; p++) {
      const lastOfKey = new Map<string, number>();
      for (const m of await readPartition(raw, topic, p)) {
        const [key, n] = m.payload.toString().split(':') as [string, string];
        assert.ok((lastOfKey.get(key) ?? -1) < Number(n), `${key} out of order in partition ${p}`);
        lastOfKey.set(key, Number(n));
      }
    }
    await producer.close();
  });

  it('asks a user selector for the partition', async () => {
    const calls: number[] = [];
    const producer = new Producer(client.ctx, {
      partitioner: (_topic, partitions: readonly Partition[]) => {
        calls.push(partitions.length);
        return partitions[partitions.length - 1]!;
      },
    });
    const r = await producer.send({ topic: uniqueName('user'), value: 'x' });
    assert.equal(r.partition.partition, 3);
    assert.deepEqual(calls, [4]);
    await producer.close();
  });

  it('stores the attribute beside the payload, readable with a raw get', async () => {
    const producer = new Producer(client.ctx);
    const topic = uniqueName('attr');
    await producer.send({ topic, value: 'payload', attribute: 'type=order', partition: 0 });
    await producer.send({ topic, value: 'plain', partition: 0 });
    const [withAttr, plain] = await readPartition(raw, topic, 0);
    assert.equal(withAttr!.attribute, 'type=order');
    assert.equal(withAttr!.payload.toString(), 'payload');
    assert.equal(withAttr!.flag, FLAG_ATTRIBUTE);
    assert.equal(plain!.attribute, null);
    assert.equal(plain!.flag, 0);
    await producer.close();
  });

  it('compresses with GZIP: the flag names the codec, the attribute stays plain, the payload inflates', async () => {
    const producer = new Producer(client.ctx, { compression: CompressionTypes.GZIP });
    const topic = uniqueName('gzip');
    const value = 'compressible '.repeat(200);
    await producer.send({ topic, value, attribute: 'a', partition: 1 });
    const [m] = await readPartition(raw, topic, 1);
    assert.equal(compressionOfFlag(m!.flag), CompressionTypes.GZIP);
    assert.equal(m!.flag & FLAG_ATTRIBUTE, FLAG_ATTRIBUTE);
    assert.equal(m!.attribute, 'a');
    assert.ok(m!.payload.length < value.length / 4, `${m!.payload.length} bytes stored`);
    assert.equal((await decompressPayload(CompressionTypes.GZIP, m!.payload)).toString(), value);
    await producer.close();
  });

  it('writes uncompressed puts byte for byte as a MetaQ client does', async () => {
    const frames: Buffer[] = [];
    const record = (encode: (opaque: number) => Buffer) => (opaque: number): Buffer => {
      const frame = encode(opaque);
      if (frame.subarray(0, 4).toString() === 'put ') frames.push(frame);
      return frame;
    };
    const recording = await connectContext(tb.port, (link) => ({
      url: link.url,
      get isConnected() { return link.isConnected; },
      onStateChange: (fn) => link.onStateChange(fn),
      send: (frame) => link.send(frame),
      request: (encode, timeoutMs) => link.request(record(encode), timeoutMs),
      requestWith: (encode, handler, token, timeoutMs) => link.requestWith(record(encode), handler, token, timeoutMs),
    }));
    const producer = new Producer(recording.ctx);
    const topic = uniqueName('bytes');
    const bodies = [Buffer.from('hello'), Buffer.alloc(3000, 7)];
    for (const body of bodies) await producer.send({ topic, value: body, partition: 3 });
    assert.equal(frames.length, 2);
    for (const [i, frame] of frames.entries()) {
      const opaque = Number(/ (\d+)\r\n/.exec(frame.toString('latin1', 0, 80))![1]);
      const body = bodies[i]!;
      assert.deepEqual(frame, encodePut({ topic, partition: 3, flag: 0, checksum: crc32Masked(body), opaque, body }));
    }
    await recording.close();
  });

  it('pipes a stream through sendAll: results in input order, the in-flight bound held', async () => {
    const producer = new Producer<string>(client.ctx);
    const topic = uniqueName('stream');
    const records: ProducerRecord<string>[] = Array.from({ length: 3000 }, (_, i) => ({ topic, value: `v${i}`, partition: i % 4 }));
    let inFlight = 0;
    let maxSeen = 0;
    const counting = {
      maxInFlight: producer.maxInFlight,
      send: (r: ProducerRecord<string>) => {
        maxSeen = Math.max(maxSeen, ++inFlight);
        return producer.send(r).finally(() => { inFlight--; });
      },
    };
    const results = await lastValueFrom(from(records).pipe(sendAll(counting, { maxInFlight: 64 }), toArray()));
    assert.equal(results.length, records.length);
    assert.equal(maxSeen, 64, 'the bound was reached and never passed');
    const lastOffset = [-1, -1, -1, -1];
    for (const [i, r] of results.entries()) {
      assert.equal(r.partition.partition, i % 4, `result ${i} out of order`);
      assert.ok(r.offset > lastOffset[i % 4]!, `offsets of partition ${i % 4} must grow in input order`);
      lastOffset[i % 4] = r.offset;
    }
    const viaMethod = await lastValueFrom(from(records.slice(0, 10)).pipe(producer.sendAll(), toArray()));
    assert.equal(viaMethod.length, 10);
    await producer.close();
  });

  it('errors sendAll at the first failed send, after emitting the results before it', async () => {
    const producer = new Producer<string>(client.ctx);
    const topic = uniqueName('stream-fail');
    const records = Array.from({ length: 20 }, (_, i) => ({ topic, value: `v${i}`, partition: i === 12 ? 99 : 0 }));
    const seen: SendResult[] = [];
    const err = await new Promise<unknown>((resolve) => {
      from(records).pipe(producer.sendAll({ maxInFlight: 5 })).subscribe({ next: (r) => seen.push(r), error: resolve,
        complete: () => resolve(undefined) });
    });
    assert.equal((err as Error).name, 'WrongPartitionError');
    assert.equal(seen.length, 12);
    await producer.close();
  });

  it('bounds sends in flight per producer and queues the rest in order', async () => {
    const producer = new Producer<string>(client.ctx, { maxInFlight: 10 });
    const topic = uniqueName('bound');
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => producer.send({ topic, value: `${i}`, partition: 0 })));
    assert.equal(producer.maxInFlightObserved, 10);
    for (let i = 1; i < results.length; i++) assert.ok(results[i]!.offset > results[i - 1]!.offset, 'queued sends keep their order');
    await producer.close();
  });

  it('refuses a message above maxMessageSize before sending it', async () => {
    const producer = new Producer(client.ctx, { maxMessageSize: 100 });
    const err = await producer.send({ topic: uniqueName('big'), value: Buffer.alloc(101), partition: 0 }).catch((e: unknown) => e);
    assert.equal((err as Error).name, 'MessageTooLargeError');
    assert.equal(producer.maxInFlightObserved, 0, 'nothing went to the broker');
    await producer.close();
  });

  it("maps the broker's refusal of a message above its maxMessageSize", async () => {
    const producer = new Producer(client.ctx, { maxMessageSize: 1 << 20 });
    const err = await producer.send({ topic: uniqueName('big'), value: Buffer.alloc(5000), partition: 0 }).catch((e: unknown) => e);
    assert.equal((err as Error).name, 'MessageTooLargeError');
    assert.equal((err as { limit: number }).limit, 4096);
    assert.equal((await producer.send({ topic: uniqueName('after'), value: 'ok' })).offset, 0, 'the connection stays usable');
    await producer.close();
  });

  it('rejects a partition the topic does not have with WrongPartitionError', async () => {
    const producer = new Producer(client.ctx);
    const err = await producer.send({ topic: uniqueName('wrong'), value: 'x', partition: 9 }).catch((e: unknown) => e);
    assert.equal((err as Error).name, 'WrongPartitionError');
    assert.equal((err as { numPartitions: number }).numPartitions, 4);
    assert.equal((err as { retriable: boolean }).retriable, false);
    await producer.close();
  });

  it('rejects bad records with InvalidArgumentError', async () => {
    const producer = new Producer(client.ctx);
    for (const record of [{ topic: 'bad topic', value: 'x' }, { topic: 'ok', value: undefined as unknown as string },
      { topic: 'ok', value: 42 as unknown as string }]) {
      const err = await producer.send(record).catch((e: unknown) => e);
      assert.equal((err as Error).name, 'InvalidArgumentError', JSON.stringify(record));
    }
    await producer.close();
  });

  it('fails sends after close with ShuttingDownError and waits for the answers of earlier ones', async () => {
    const producer = new Producer(client.ctx);
    const topic = uniqueName('close');
    const early = Array.from({ length: 100 }, (_, i) => producer.send({ topic, value: `${i}` }));
    await producer.close();
    assert.equal(producer.pending, 0);
    assert.equal((await Promise.all(early)).length, 100);
    const err = await producer.send({ topic, value: 'late' }).catch((e: unknown) => e);
    assert.equal((err as Error).name, 'ShuttingDownError');
  });
});

describe('sdk/producer (against a broker that accepts only configured topics)', () => {
  it('rejects a topic the broker does not accept with UnknownTopicError', async () => {
    const dir = await tempDir('metaq-producer-');
    const config = parseConfig(`[system]\nbrokerId=0\nserverPort=0\ndashboardHttpPort=0\ndataPath=${dir.path}\n` +
      'numPartitions=2\n[zookeeper]\nzk.zkEnable=false\n[topic=known]\n');
    const broker = await startBroker(config, { logger });
    const client = await connectContext(broker.port);
    try {
      const producer = new Producer(client.ctx);
      assert.equal((await producer.send({ topic: 'known', value: 'x' })).partition.partition, 1);
      for (const record of [{ topic: 'unknown', value: 'x' }, { topic: 'unknown2', value: 'x', partition: 0 }]) {
        const err = await producer.send(record).catch((e: unknown) => e);
        assert.equal((err as Error).name, 'UnknownTopicError', JSON.stringify(record));
        assert.equal((err as { topic: string }).topic, record.topic);
      }
    } finally {
      await client.close();
      await broker.close();
      await dir.remove();
    }
  });
});
