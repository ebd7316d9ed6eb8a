import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pino from 'pino';
import { lastValueFrom, mergeMap, take, toArray } from 'rxjs';
import { createClient, type ClientOptions, type MetaqClient } from '../sdk/index.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { MetaqSpout, type SpoutTuple } from '../spout/metaq-spout.js';

const PARTITIONS = 3;

describe('MetaqSpout', () => {
  let tb: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let producerClient: MetaqClient;

  before(async () => {
    dir = await tempDir('metaq-spout-');
    tb = await startTestBroker({ 'system.numPartitions': String(PARTITIONS), 'system.longPollTimeoutMs': '200' });
    producerClient = await createClient({ serverUrl: `meta://127.0.0.1:${tb.port}` });
  });

  after(async () => {
    await producerClient.close();
    await tb.stop();
    await dir.remove();
  });

  /** Client options with this test's own offsets file and recover dir. */
  function clientOptions(name: string): ClientOptions {
    return {
      serverUrl: `meta://127.0.0.1:${tb.port}`,
      offsetsFile: join(dir.path, `${name}.offsets.json`),
      recoverDir: join(dir.path, `${name}.recover`),
    };
  }

  /** Sends `count` messages `v<i>` round the partitions; returns the values. */
  async function produce(topic: string, count: number, from = 0): Promise<string[]> {
    const producer = producerClient.producer();
    const values = Array.from({ length: count }, (_, i) => `v${from + i}`);
    await Promise.all(values.map((value, i) => producer.send({ topic, value, partition: (from + i) % PARTITIONS })));
    return values;
  }

  /** Takes tuples until `n` arrived (waiting for them), without acking. */
  async function takeTuples(spout: MetaqSpout, n: number): Promise<SpoutTuple[]> {
    const out: SpoutTuple[] = [];
    await waitFor(async () => {
      while (out.length < n) {
        const t = spout.nextTuple();
        if (t === undefined) break;
        out.push(t);
      }
      if (out.length < n) await spout.ready(100);
      return out.length >= n;
    }, { timeoutMs: 10_000 });
    return out;
  }

  function valueOf(t: SpoutTuple): string {
    return (t.values[0] as Buffer).toString();
  }

  it('emits every message once with a string id, and a restart after acking all emits nothing again', async () => {
    const topic = uniqueName('spout-all');
    const name = uniqueName('all');
    const sent = await produce(topic, 30);
    const spout = new MetaqSpout({ client: clientOptions(name), topic, group: 'g' });
    await spout.open();
    const tuples = await takeTuples(spout, 30);
    assert.deepEqual(tuples.map(valueOf).sort(), [...sent].sort());
    for (const t of tuples) assert.match(t.id, /^0-\d@\d+$/);
    for (const t of tuples) spout.ack(t.id);
    assert.equal(spout.stats().pending, 0);
    await spout.close();

    const again = new MetaqSpout({ client: clientOptions(name), topic, group: 'g' });
    await again.open();
    await produce(topic, 1, 30);
    const [next] = await takeTuples(again, 1);
    assert.equal(valueOf(next!), 'v30', 'the restart resumes after everything acked');
    await again.close();
  });

  it('never commits past an un-acked tuple: a restart replays from it', async () => {
    const topic = uniqueName('spout-gap');
    const name = uniqueName('gap');
    await produce(topic, 30);
    const spout = new MetaqSpout({ client: clientOptions(name), topic, group: 'g' });
    await spout.open();
    const tuples = await takeTuples(spout, 30);
    const held = tuples.filter((t) => t.message.partition.partition === 1)[2]!;
    for (const t of tuples) if (t !== held) t.ack();
    await spout.close();

    const again = new MetaqSpout({ client: clientOptions(name), topic, group: 'g' });
    await again.open();
    const replayed = await takeTuples(again, 8);
    assert.deepEqual(replayed.map((t) => t.id).sort(), tuples.filter((t) => t.message.partition.partition === 1 &&
      t.message.offset >= held.message.offset).map((t) => t.id).sort(), 'partition 1 from the held tuple, nothing else');
    assert.equal(again.nextTuple(), undefined);
    await again.close();
  });

  it('caps pending tuples and what was emitted beyond the committed offsets at maxPending', async () => {
    const topic = uniqueName('spout-cap');
    await produce(topic, 60);
    const spout = new MetaqSpout({ client: clientOptions(uniqueName('cap')), topic, group: 'g', maxPending: 10,
      consumer: { commitIntervalMs: 60_000 } });
    await spout.open();
    const first = await takeTuples(spout, 10);
    assert.equal(await spout.ready(300), false, 'no eleventh tuple while ten are pending');
    assert.equal(spout.nextTuple(), undefined);
    assert.equal(spout.stats().pending, 10);
    // Acking frees the room once the acks are committed (the spout commits by itself when it is at the cap).
    for (const t of first) t.ack();
    const second = await takeTuples(spout, 10);
    assert.equal(spout.stats().pending, 10);
    assert.ok(spout.stats().beyondCommit <= 10, `beyondCommit ${spout.stats().beyondCommit}`);
    for (const t of second) t.ack();
    let seen = 20;
    while (seen < 60) {
      const batch = await takeTuples(spout, Math.min(10, 60 - seen));
      assert.ok(spout.stats().beyondCommit <= 10);
      for (const t of batch) t.ack();
      seen += batch.length;
    }
    await spout.close();
  });

  it('keeps emitting through thousands of messages of one partition (the emitted-offset book trims and compacts)', async () => {
    const topic = uniqueName('spout-long');
    const producer = producerClient.producer();
    const total = 3000;
    await Promise.all(Array.from({ length: total }, (_, i) => producer.send({ topic, value: `w${i}`, partition: 0 })));
    const spout = new MetaqSpout({ client: clientOptions(uniqueName('long')), topic, group: 'g', maxPending: 100,
      consumer: { commitIntervalMs: 60_000 } });
    await spout.open();
    let seen = 0;
    while (seen < total) {
      const batch = await takeTuples(spout, Math.min(50, total - seen));
      for (const t of batch) t.ack();
      seen += batch.length;
      const s = spout.stats();
      assert.ok(s.beyondCommit >= 0 && s.beyondCommit <= 100, `beyondCommit ${s.beyondCommit} after ${seen}`);
    }
    await spout.close();
  });

  it('replays a failed tuple with the same id up to maxReplays, then hands it to the recover store and goes on', async () => {
    const topic = uniqueName('spout-fail');
    await produce(topic, 3);
    const spout = new MetaqSpout({ client: clientOptions(uniqueName('fail')), topic, group: 'g', maxReplays: 2,
      consumer: { maxFetchDelayMs: 100, recoverIntervalMs: 200 } });
    await spout.open();
    const tuples = await takeTuples(spout, 3);
    const victim = tuples[0]!;
    for (const t of tuples.slice(1)) t.ack();
    const emits: string[] = [];
    victim.fail(new Error('first'));
    for (let i = 0; i < 2; i++) {
      const [again] = await takeTuples(spout, 1);
      assert.equal(again!.id, victim.id);
      assert.equal(again!.message.redeliveries, i + 1);
      emits.push(again!.id);
      again!.fail(new Error(`replay ${i + 1}`));
    }
    assert.equal(spout.stats().recovered, 1);
    // The recover store redelivers it later as a new tuple; acking that one settles it for good.
    const [recovered] = await takeTuples(spout, 1);
    assert.equal(valueOf(recovered!), valueOf(victim));
    recovered!.ack();
    const s = spout.stats();
    assert.deepEqual([s.failed, s.replayed, s.pending], [3, 3, 0]);
    await spout.close();
  });

  it('emits nothing while deactivated and resumes on activate', async () => {
    const topic = uniqueName('spout-act');
    await produce(topic, 5);
    const spout = new MetaqSpout({ client: clientOptions(uniqueName('act')), topic, group: 'g' });
    await spout.open();
    spout.deactivate();
    await waitFor(() => spout.stats().ready === 5);
    assert.equal(spout.nextTuple(), undefined);
    assert.equal(await spout.ready(50), false);
    spout.activate();
    const tuples = await takeTuples(spout, 5);
    for (const t of tuples) t.ack();
    await spout.close();
  });

  it('streams tuples through a Node pipeline and closes the spout when the stream ends', async () => {
    const topic = uniqueName('spout-stream');
    const sent = await produce(topic, 40);
    const spout = new MetaqSpout({ client: clientOptions(uniqueName('stream')), topic, group: 'g', maxPending: 8 });
    const got: string[] = [];
    const readable = spout.stream();
    assert.equal(readable.readableHighWaterMark, 8);
    await pipeline(readable, new Writable({
      objectMode: true,
      write(t: SpoutTuple, _enc, cb) {
        got.push(valueOf(t));
        t.ack();
        if (got.length === sent.length) readable.destroy();
        cb();
      },
    })).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
    });
    assert.deepEqual(got.sort(), [...sent].sort());
    assert.ok(spout.closed);
    await spout.close();
  });

  it('serves tuples as an Observable that closes the spout on unsubscribe', async () => {
    const topic = uniqueName('spout-rx');
    const name = uniqueName('rx');
    const sent = await produce(topic, 25);
    const spout = new MetaqSpout({ client: clientOptions(name), topic, group: 'g' });
    const got = await lastValueFrom(spout.tuples$().pipe(
      take(sent.length),
      mergeMap(async (t) => { t.ack(); return valueOf(t); }, 4),
      toArray(),
    ));
    assert.deepEqual(got.sort(), [...sent].sort());
    assert.ok(spout.closed);
    await spout.close();
    const again = new MetaqSpout({ client: clientOptions(name), topic, group: 'g' });
    await again.open();
    await produce(topic, 1, 25);
    const [next] = await takeTuples(again, 1);
    assert.equal(valueOf(next!), 'v25', `all ${sent.length} were acked and committed on unsubscribe`);
    await again.close();
  });

  it('logs to its own logger when given one, and to the client options\' logger only when not', async () => {
    const topic = uniqueName('spout-log');
    await produce(topic, 2);
    const captured = (): { lines: string[]; logger: pino.Logger } => {
      const lines: string[] = [];
      return { lines, logger: pino({ level: 'warn' }, { write: (l: string) => { lines.push(l); } }) };
    };
    const own = captured();
    const clients = captured();
    let thrown = false;
    const spout = new MetaqSpout({
      client: { ...clientOptions(uniqueName('log')), logger: clients.logger }, topic, group: 'g', logger: own.logger,
      consumer: { maxFetchDelayMs: 100 },
      toValues: (m) => {
        if (!thrown && m.value.toString() === 'v0') {
          thrown = true;
          throw new Error('bad value');
        }
        return [m.value];
      },
    });
    await spout.open();
    const tuples = await takeTuples(spout, 2);
    assert.deepEqual(tuples.map(valueOf).sort(), ['v0', 'v1'], 'the message whose values threw comes again');
    for (const t of tuples) t.ack();
    await spout.close();
    assert.ok(own.lines.some((l) => l.includes('toValues threw')), own.lines.join(''));
    assert.ok(!clients.lines.some((l) => l.includes('toValues threw')), clients.lines.join(''));
  });

  it('refuses a bad maxPending or maxReplays with a message naming it', () => {
    const base = { client: { serverUrl: 'meta://127.0.0.1:1' }, topic: 't', group: 'g' };
    assert.throws(() => new MetaqSpout({ ...base, maxPending: 0 }), /maxPending must be a positive integer, got 0/);
    assert.throws(() => new MetaqSpout({ ...base, maxReplays: -1 }), /maxReplays must be an integer >= 0, got -1/);
  });
});
