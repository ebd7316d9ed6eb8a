import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { lastValueFrom, take, toArray } from 'rxjs';
import type { ClientContext } from '../sdk/client/client-context.js';
import type { Link } from '../sdk/cluster/broker-router.js';
import { DirectRouter } from '../sdk/cluster/direct-router.js';
import { CompressionTypes, flagWithCompression } from '../sdk/codec/compression.js';
import { Deserializers } from '../sdk/codec/serializers.js';
import { fetchOnce } from '../sdk/consumer/fetch-once.js';
import { browseTopic } from '../sdk/consumer/topic-browser.js';
import { MessageTooLargeError, ShuttingDownError, WrongPartitionError } from '../sdk/errors.js';
import { partitionName, type Message } from '../sdk/message.js';
import { BrokerLink } from '../sdk/network/broker-link.js';
import { encodePayload } from '../sdk/protocol/record.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { startBroker } from '../broker/broker.js';
import { embeddedConfig } from '../broker/config/server-config.js';
import { uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const LONG_POLL_MS = 300;

/** A client context over a real link, counting the `get`s it sends and those still unanswered. */
async function contextFor(port: number): Promise<ClientContext & { gets: number; pending: number; close(): Promise<void> }> {
  const link = new BrokerLink({ host: '127.0.0.1', port }, { logger: pino({ level: 'silent' }) });
  await link.whenConnected();
  const counted: Link & { close(): Promise<void> } = {
    url: link.url,
    get isConnected() { return link.isConnected; },
    onStateChange: (fn) => link.onStateChange(fn),
    requestWith: (encode, handler, token, timeoutMs) => link.requestWith(encode, handler, token, timeoutMs),
    request: (encode, timeoutMs) => {
      let isGet = false;
      const p = link.request((opaque) => {
        const frame = encode(opaque);
        isGet = frame.subarray(0, 4).toString() === 'get ';
        return frame;
      }, timeoutMs);
      if (isGet) {
        ctx.gets++;
        ctx.pending++;
        const done = (): void => { ctx.pending--; };
        p.then(done, done);
      }
      return p;
    },
    send: (frame) => link.send(frame),
    close: () => link.close(),
  };
  const router = await DirectRouter.start(counted);
  let closing = false;
  const ctx = {
    router,
    logger: pino({ level: 'silent' }),
    options: { requestTimeoutMs: 10_000, recoverDir: '/nonexistent', offsetsFile: '/nonexistent' },
    get closing() { return closing; },
    own: () => () => undefined,
    gets: 0,
    pending: 0,
    close: async () => {
      closing = true;
      await router.close();
    },
  };
  return ctx;
}

describe('sdk: active pull (get) and the topic browser', () => {
  let broker: TestBroker;
  let raw: RawClient;
  let ctx: Awaited<ReturnType<typeof contextFor>>;

  before(async () => {
    broker = await startTestBroker({ 'system.longPollTimeoutMs': String(LONG_POLL_MS), 'system.updateConsumerOffsets': 'true' });
    raw = await RawClient.connect(broker.port);
    ctx = await contextFor(broker.port);
  });

  after(async () => {
    await ctx?.close();
    await raw?.close();
    await broker?.dispose();
  });

  /** Puts `texts` to one partition; returns the offsets the broker reported. */
  async function put(topic: string, partition: number, texts: readonly string[], attribute: string | null = null,
    extraFlags = 0): Promise<number[]> {
    const offsets: number[] = [];
    for (const t of texts) {
      const payload = (extraFlags & (0x7 << 16)) !== 0 ? gzipSync(t) : Buffer.from(t);
      const { data, flag } = encodePayload(payload, attribute, extraFlags);
      const r = await raw.put(topic, partition, data, { flag });
      assert.equal(r.code, 200, r.body.toString());
      offsets.push(Number(r.body.toString().split(' ')[2]));
    }
    return offsets;
  }

  it('reads the messages of a partition from an offset, and continues at nextOffset', async () => {
    const topic = uniqueName('get');
    const offsets = await put(topic, 1, ['a', 'bb', 'ccc'], 'tag');
    const first = await fetchOnce(ctx, topic, 1, 0, { deserializer: Deserializers.string });
    assert.deepEqual(first.messages.map((m) => [m.value, m.attribute, m.offset]),
      [['a', 'tag', offsets[0]], ['bb', 'tag', offsets[1]], ['ccc', 'tag', offsets[2]]]);
    assert.equal(partitionName(first.messages[0]!.partition), `${(ctx.router as DirectRouter).brokerId}-1`);
    assert.equal(first.movedTo, undefined);
    const second = await fetchOnce(ctx, topic, { brokerId: (ctx.router as DirectRouter).brokerId, partition: 1 },
      offsets[1]!);
    assert.deepEqual(second.messages.map((m) => m.payload.toString()), ['bb', 'ccc']);
    assert.equal(second.nextOffset, first.nextOffset);
  });

  it('answers no messages at once at the end of a partition (the browser group never long-polls)', async () => {
    const topic = uniqueName('end');
    await put(topic, 0, ['only']);
    const r0 = await fetchOnce(ctx, topic, 0, 0);
    const t0 = performance.now();
    const end = await fetchOnce(ctx, topic, 0, r0.nextOffset);
    assert.deepEqual(end.messages, []);
    assert.equal(end.nextOffset, r0.nextOffset);
    assert.equal(end.movedTo, undefined);
    assert.ok(performance.now() - t0 < LONG_POLL_MS * 0.5, 'the broker answered without waiting for its long poll');
  });

  it('reports where to move when the offset is past the end', async () => {
    const topic = uniqueName('moved');
    const [offset] = await put(topic, 0, ['x']);
    const r = await fetchOnce(ctx, topic, 0, 10_000);
    assert.deepEqual(r.messages, []);
    assert.equal(r.movedTo, offset! + 21);
    assert.equal(r.nextOffset, r.movedTo);
  });

  it('fetches a message larger than maxSize whole with a second get', async () => {
    const topic = uniqueName('large');
    const big = 'L'.repeat(200_000);
    await put(topic, 0, [big, 'small']);
    const before = ctx.gets;
    const r = await fetchOnce(ctx, topic, 0, 0, { maxSize: 4096, deserializer: Deserializers.string });
    assert.equal(r.messages.length, 1);
    assert.equal(r.messages[0]!.value.length, big.length);
    assert.equal(ctx.gets - before, 2, 'one get cut the record, one fetched exactly its size');
  });

  it('fails with MessageTooLargeError when the broker cannot send a record whole', async () => {
    // Written under the default limits, then served by a broker whose windows are capped at 1000 bytes.
    const first = await startTestBroker();
    const firstRaw = await RawClient.connect(first.port);
    const topic = uniqueName('toolarge');
    assert.equal((await firstRaw.put(topic, 0, Buffer.alloc(5000, 1))).code, 200);
    await firstRaw.close();
    await first.stop();
    const capped = await startBroker(embeddedConfig({
      'system.serverPort': '0', 'system.dashboardHttpPort': '0', 'system.dataPath': first.dataDir, 'system.maxTransferSize': '1000',
    }), { logger: pino({ level: 'silent' }) });
    const cappedCtx = await contextFor(capped.port);
    try {
      await assert.rejects(fetchOnce(cappedCtx, topic, 0, 0, { maxSize: 100 }), (e: unknown) =>
        e instanceof MessageTooLargeError && e.size === 5020 && e.limit === 1000);
      assert.equal(cappedCtx.gets, 2, 'one retry with the record\'s size');
    } finally {
      await cappedCtx.close();
      await capped.close();
      await first.dispose();
    }
  });

  it('refuses a maxSize that is not a positive integer', async () => {
    await assert.rejects(fetchOnce(ctx, 'any', 0, 0, { maxSize: 0 }), /maxSize must be a positive integer/);
  });

  it('decompresses compressed messages', async () => {
    const topic = uniqueName('gzip');
    const text = 'squeeze me '.repeat(100);
    await put(topic, 0, [text], 'a', flagWithCompression(0, CompressionTypes.GZIP));
    const r = await fetchOnce(ctx, topic, 0, 0, { deserializer: Deserializers.string });
    assert.equal(r.messages[0]?.value, text);
    assert.equal(r.messages[0]?.attribute, 'a');
  });

  it('refuses a partition the topic does not have', async () => {
    const topic = uniqueName('wrong');
    await assert.rejects(fetchOnce(ctx, topic, 99, 0), WrongPartitionError);
    const brokerId = (ctx.router as DirectRouter).brokerId;
    await assert.rejects(fetchOnce(ctx, topic, { brokerId, partition: 99 }, 0), (e: unknown) =>
      e instanceof WrongPartitionError && e.numPartitions === 4);
  });

  it('browses every partition in order up to the end known at the start, then completes', async () => {
    const topic = uniqueName('browse');
    await put(topic, 2, ['p2-a', 'p2-b']);
    await put(topic, 0, Array.from({ length: 50 }, (_, i) => `p0-${i}`));
    // Partition 1 and 3 stay empty: they are never written.
    let extra: Promise<number[]> | undefined;
    const t0 = performance.now();
    const seen: Message<string>[] = [];
    await new Promise<void>((resolve, reject) => {
      browseTopic(ctx, topic, { maxSize: 64, deserializer: Deserializers.string }).subscribe({
        next: (m) => {
          seen.push(m);
          // Written after the browse started: not part of it, though the browse is still reading partition 0.
          extra ??= put(topic, 2, ['p2-late']);
        },
        error: reject,
        complete: resolve,
      });
    });
    await extra;
    assert.deepEqual(seen.map((m) => m.value),
      [...Array.from({ length: 50 }, (_, i) => `p0-${i}`), 'p2-a', 'p2-b']);
    assert.ok(performance.now() - t0 < LONG_POLL_MS + 2_000, 'no get waited on a long poll');
    assert.equal(ctx.pending, 0);
  });

  it('completes at once on a topic with no messages, without a get', async () => {
    const before = ctx.gets;
    const all = await lastValueFrom(browseTopic(ctx, uniqueName('empty')).pipe(toArray()));
    assert.deepEqual(all, []);
    assert.equal(ctx.gets, before);
  });

  it('browses only the partitions asked for', async () => {
    const topic = uniqueName('some');
    await put(topic, 0, ['zero']);
    await put(topic, 3, ['three']);
    const brokerId = (ctx.router as DirectRouter).brokerId;
    const all = await lastValueFrom(browseTopic(ctx, topic, { partitions: [{ brokerId, partition: 3 }] }).pipe(toArray()));
    assert.deepEqual(all.map((m) => m.payload.toString()), ['three']);
  });

  it('stops reading when unsubscribed', async () => {
    const topic = uniqueName('stop');
    await put(topic, 0, Array.from({ length: 100 }, (_, i) => `m${i}`));
    const before = ctx.gets;
    const three = await lastValueFrom(browseTopic(ctx, topic, { maxSize: 30 }).pipe(take(3), toArray()));
    assert.equal(three.length, 3);
    await waitFor(() => ctx.pending === 0, { what: 'the last get to settle' });
    const afterSettle = ctx.gets;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ctx.gets, afterSettle, 'no get after the unsubscribe settled');
    assert.ok(afterSettle - before <= 4, `${afterSettle - before} gets for 3 one-message windows`);
  });

  it('is cold: each subscription browses anew', async () => {
    const topic = uniqueName('cold');
    await put(topic, 1, ['one']);
    const browse$ = browseTopic(ctx, topic);
    const before = ctx.gets;
    assert.equal(ctx.gets, before, 'nothing is read before a subscription');
    assert.equal((await lastValueFrom(browse$.pipe(toArray()))).length, 1);
    await put(topic, 1, ['two']);
    assert.equal((await lastValueFrom(browse$.pipe(toArray()))).length, 2);
  });

  it('fails with ShuttingDownError once the client is closing', async () => {
    const other = await contextFor(broker.port);
    await other.close();
    await assert.rejects(fetchOnce(other, 't', 0, 0), ShuttingDownError);
    await assert.rejects(lastValueFrom(browseTopic(other, 't')), ShuttingDownError);
  });
});
