import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { createClient, ProtocolError, type MetaqClient } from '../sdk/index.js';
import { MetaqSpout } from '../spout/metaq-spout.js';
import { FrameDecoder, MultilangSpout } from '../spout/multilang.js';
import { parseSpoutArgs } from '../spout/cli.js';
import { javaHashMapOrder, javaJson, StormDriver, SubprocessGoneError, type Emit } from './harness/storm-driver.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const PARTITIONS = 3;
const BIN = join(import.meta.dirname, '..', 'bin', 'metaq.js');

describe('spout/multilang framing', () => {
  const frames = [{ command: 'next', id: '' }, [4, 5], { conf: { 'a/b': 'x\ny' }, pidDir: '/tmp/p' }];
  const text = frames.map((f) => `${JSON.stringify(f, null, 2)}\nend\n`).join('');

  it('decodes frames split at every byte, joining multi-line JSON', () => {
    for (let cut = 0; cut <= text.length; cut++) {
      const d = new FrameDecoder();
      assert.deepEqual([...d.push(text.slice(0, cut)), ...d.push(text.slice(cut))], frames, `cut at ${cut}`);
    }
    const d = new FrameDecoder();
    const one: unknown[] = [];
    for (const ch of text) one.push(...d.push(ch));
    assert.deepEqual(one, frames);
    assert.equal(d.rest, '');
  });

  it('reads Storm\'s escapes and CRLF line ends, and keeps an unfinished frame as rest', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push('{"id":"","pidDir":"\\/var\\/storm"}\r\nend\r\n{"command":'), [{ id: '', pidDir: '/var/storm' }]);
    assert.equal(d.rest, '{"command":');
  });

  it('refuses an empty or unparsable frame with its state and start', () => {
    const table: Array<[string, RegExp]> = [
      ['end\n', /empty multilang frame/],
      ['\n  \nend\n', /empty multilang frame/],
      ['{"command":"next"\nend\n', /unparsable multilang frame.*near "{\\"command\\":\\"next\\""/],
      ['next\nend\n', /unparsable multilang frame/],
      ['{"a":1}{"b":2}\nend\n', /unparsable multilang frame/],
    ];
    for (const [input, why] of table) {
      assert.throws(() => new FrameDecoder().push(input), (e: unknown) => e instanceof ProtocolError && why.test(e.message) &&
        e.state === 'frame', JSON.stringify(input));
    }
  });

  it('drives with Java HashMap key order and json-smart escapes, as Storm writes', () => {
    assert.equal(javaJson({ command: 'next', id: '' }), '{"id":"","command":"next"}');
    assert.deepEqual(javaHashMapOrder(['pidDir', 'conf', 'context']), ['pidDir', 'context', 'conf']);
    assert.equal(javaJson({ d: '/a/b\u2028' }), '{"d":"\\/a\\/b\\u2028"}');
  });
});

describe('metaq spout (Storm multilang)', () => {
  let tb: TestBroker;
  let dir: { path: string; remove(): Promise<void> };
  let producerClient: MetaqClient;
  const drivers: StormDriver[] = [];

  before(async () => {
    dir = await tempDir('metaq-spout-ml-');
    tb = await startTestBroker({ 'system.numPartitions': String(PARTITIONS), 'system.longPollTimeoutMs': '200' });
    producerClient = await createClient({ serverUrl: `meta://127.0.0.1:${tb.port}` });
  });

  after(async () => {
    for (const d of drivers) d.kill('SIGKILL');
    await producerClient.close();
    await tb.dispose();
    await dir.remove();
  });

  async function produce(topic: string, count: number, from = 0): Promise<string[]> {
    const producer = producerClient.producer();
    const values = Array.from({ length: count }, (_, i) => `v${from + i}`);
    await Promise.all(values.map((value, i) => producer.send({ topic, value, partition: (from + i) % PARTITIONS })));
    return values;
  }

  /** `metaq spout` args of one scenario `name` (own offsets file and recover dir). */
  function spoutArgs(name: string, topic: string, extra: string[] = []): string[] {
    return [BIN, 'spout', '--topic', topic, '--group', 'g', '--server', `meta://127.0.0.1:${tb.port}`,
      '--offsets-file', join(dir.path, `${name}.offsets.json`), '--recover-dir', join(dir.path, `${name}.recover`), ...extra];
  }

  async function startSpout(args: string[], conf: Record<string, unknown> = {}): Promise<StormDriver> {
    const d = await StormDriver.spawn(process.execPath, args, { pidDir: dir.path, conf });
    drivers.push(d);
    return d;
  }

  /** Calls next until `n` tuples were emitted in all (each reply checked by the driver). */
  async function emitted(d: StormDriver, n: number): Promise<Emit[]> {
    const out: Emit[] = [];
    await waitFor(async () => {
      out.push(...(await d.next()).emits);
      return out.length >= n;
    }, { timeoutMs: 15_000, intervalMs: 0, what: `${n} emits` });
    assert.equal(out.length, n, 'no more than asked for');
    return out;
  }

  const offsetOf = (e: Emit): number => Number(String(e.id).split('@')[1]);
  const partitionOf = (e: Emit): string => String(e.id).split('@')[0]!;

  it('answers the handshake with its pid first, creates <pidDir>/<pid>, and exits 0 when stdin ends', async () => {
    const topic = uniqueName('ml-hs');
    const d = await startSpout(spoutArgs(uniqueName('hs'), topic));
    assert.ok(statSync(join(dir.path, String(d.pid))).isFile());
    assert.deepEqual((await d.next()).emits, []);
    d.endInput();
    assert.equal(await d.exited(), 0);
  });

  it('emits a tuple per next with its id and values, answers every command with one sync, and syncs quickly when idle', async () => {
    const topic = uniqueName('ml-emit');
    const sent = await produce(topic, 9);
    const d = await startSpout(spoutArgs(uniqueName('emit'), topic));
    const emits = await emitted(d, 9);
    for (const e of emits) {
      assert.match(String(e.id), /^0-[0-2]@\d+$/);
      assert.equal(e.stream, 'default');
    }
    assert.deepEqual(emits.map((e) => e.tuple[0]).sort(), [...sent].sort());
    assert.deepEqual(emits.map((e) => e.tuple.length), new Array(9).fill(1));
    for (const e of emits) assert.deepEqual((await d.ack(e.id!)).emits, []);
    const idle = await d.next();
    assert.deepEqual(idle.emits, []);
    assert.ok(idle.ms < 1000, `an idle next synced after ${idle.ms} ms`);
    d.kill('SIGTERM');
    assert.equal(await d.exited(), 0, 'SIGTERM closes cleanly');
  });

  it('answers activate and deactivate with a sync and emits nothing while deactivated', async () => {
    const topic = uniqueName('ml-act');
    await produce(topic, 3);
    const d = await startSpout(spoutArgs(uniqueName('act'), topic));
    await d.activate();
    await d.deactivate();
    for (let i = 0; i < 5; i++) assert.deepEqual((await d.next()).emits, []);
    await d.activate();
    const emits = await emitted(d, 3);
    for (const e of emits) await d.ack(e.id!);
    d.endInput();
    assert.equal(await d.exited(), 0);
  });

  it('tolerates task-id arrays on stdin between commands', async () => {
    const topic = uniqueName('ml-tid');
    await produce(topic, 2);
    const d = await startSpout(spoutArgs(uniqueName('tid'), topic));
    d.writeRaw('[4,5]\nend\n[\n  7\n]\nend\n');
    const emits = await emitted(d, 2);
    d.writeRaw('[]\nend\n');
    for (const e of emits) await d.ack(e.id!);
    d.endInput();
    assert.equal(await d.exited(), 0);
  });

  it('honours topology.max.spout.pending when --max-pending is not given, and the flag over it', async () => {
    const topic = uniqueName('ml-cap');
    await produce(topic, 12);
    const d = await startSpout(spoutArgs(uniqueName('cap'), topic), { 'topology.max.spout.pending': 4 });
    const first = await emitted(d, 4);
    for (let i = 0; i < 3; i++) assert.deepEqual((await d.next()).emits, [], 'nothing beyond 4 pending');
    await d.ack(first[0]!.id!);
    await emitted(d, 1);
    d.kill('SIGKILL');
    await d.exited();

    const flagged = await startSpout(spoutArgs(uniqueName('cap2'), topic, ['--max-pending', '6']),
      { 'topology.max.spout.pending': 4 });
    await emitted(flagged, 6);
    assert.deepEqual((await flagged.next()).emits, []);
    flagged.kill('SIGKILL');
  });

  it('serves the message scheme: value, topic, partition, offset, attribute', async () => {
    const topic = uniqueName('ml-scheme');
    const r = await producerClient.producer().send({ topic, value: 'hello', partition: 2, attribute: 'attr' });
    const d = await startSpout(spoutArgs(uniqueName('scheme'), topic, ['--scheme', 'message']));
    const [e] = await emitted(d, 1);
    assert.deepEqual(e!.tuple, ['hello', topic, '0-2', r.offset, 'attr']);
    assert.equal(e!.id, `0-2@${r.offset}`);
    d.kill('SIGKILL');
  });

  it('replays a failed tuple with its id, and past --max-replays hands it to the recover store and says so', async () => {
    const topic = uniqueName('ml-fail');
    await produce(topic, 1);
    const name = uniqueName('fail');
    const d = await startSpout(spoutArgs(name, topic, ['--max-replays', '1', '--retry-delay', '100', '--recover-interval', '300']));
    const [e] = await emitted(d, 1);
    await d.fail(e!.id!);
    const [again] = await emitted(d, 1);
    assert.equal(again!.id, e!.id, 'the failed tuple comes back with the same id');
    const failed = await d.fail(again!.id!);
    const logs = [...failed.logs];
    // The recover store takes it (logged as a warning to Storm), then redelivers it later as a tuple again.
    const [recovered] = await waitFor(async () => {
      const r = await d.next();
      logs.push(...r.logs);
      return r.emits.length > 0 ? r.emits : undefined;
    }, { timeoutMs: 10_000, intervalMs: 0 });
    assert.deepEqual(recovered!.tuple, e!.tuple);
    assert.ok(logs.some((l) => l.level === 3 && /recover store/.test(l.msg)), JSON.stringify(logs));
    assert.ok(readdirSync(join(dir.path, `${name}.recover`)).length > 0, 'the recover store has a journal');
    await d.ack(recovered!.id!);
    d.endInput();
    assert.equal(await d.exited(), 0);
  });

  it('after a SIGKILL, a new worker replays exactly the un-acked tuples from the committed offsets', async () => {
    const topic = uniqueName('ml-restart');
    const name = uniqueName('restart');
    const offsetsFile = join(dir.path, `${name}.offsets.json`);
    await produce(topic, 30);
    const first = await startSpout(spoutArgs(name, topic));
    const emits = await emitted(first, 30);
    // Hold the 3rd tuple of partition 0 and the 6th of partition 2; ack everything else.
    const byPartition = (p: string): Emit[] => emits.filter((e) => partitionOf(e) === p).sort((a, b) => offsetOf(a) - offsetOf(b));
    const held = [byPartition('0-0')[2]!, byPartition('0-2')[5]!];
    for (const e of emits) if (!held.includes(e)) await first.ack(e.id!);
    // Deactivate commits what was acked; the file then shows the held offsets (and partition 1's end).
    await first.deactivate();
    const end1 = Math.max(...byPartition('0-1').map(offsetOf));
    await waitFor(() => {
      const c = committedOffsets(offsetsFile);
      return c.get(0) === offsetOf(held[0]!) && c.get(2) === offsetOf(held[1]!) && (c.get(1) ?? 0) > end1;
    }, { what: 'the commit of the acked tuples' });
    first.kill('SIGKILL');
    assert.equal(await first.exited(), 'SIGKILL');

    const second = await startSpout(spoutArgs(name, topic));
    const expected = emits.filter((e) => held.some((h) => partitionOf(h) === partitionOf(e) && offsetOf(e) >= offsetOf(h)));
    const replayed = await emitted(second, expected.length);
    assert.deepEqual(replayed.map((e) => e.id).sort(), expected.map((e) => e.id).sort());
    for (const r of replayed) assert.deepEqual(r.tuple, expected.find((e) => e.id === r.id)!.tuple, 'the same values');
    for (let i = 0; i < 3; i++) assert.deepEqual((await second.next()).emits, [], 'nothing else');
    for (const e of replayed) await second.ack(e.id!);
    second.kill('SIGTERM');
    assert.equal(await second.exited(), 0);

    // The clean close committed everything: a third worker has nothing to replay.
    const third = await startSpout(spoutArgs(name, topic));
    for (let i = 0; i < 3; i++) assert.deepEqual((await third.next()).emits, []);
    third.endInput();
    assert.equal(await third.exited(), 0);
  });

  it('answers error and exits 1 when the consumer fails, without a sync', async () => {
    const topic = uniqueName('ml-error');
    await produce(topic, 1);
    const name = uniqueName('error');
    const notADir = join(dir.path, `${name}.not-a-dir`);
    writeFileSync(notADir, 'x');
    // The last --recover-dir counts: a file, so the recover store cannot open when the tuple fails for good.
    const d = await startSpout(spoutArgs(name, topic, ['--recover-dir', notADir, '--max-replays', '0']));
    const [e] = await emitted(d, 1);
    await d.fail(e!.id!);
    const gone = await waitFor(async () => {
      try {
        await d.next();
        return undefined;
      } catch (err) {
        return err;
      }
    }, { timeoutMs: 10_000, intervalMs: 0 });
    assert.ok(gone instanceof SubprocessGoneError, String(gone));
    assert.ok(gone.errors.some((m) => /metaq spout failed/.test(m)), JSON.stringify(gone.frames));
    assert.equal(await d.exited(), 1);
  });

  it('runs in-process over a stream pair', async () => {
    const topic = uniqueName('ml-inproc');
    await produce(topic, 2);
    const name = uniqueName('inproc');
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const ml = new MultilangSpout({
      input: stdin, output: stdout, pid: 4242, logger: pino({ level: 'silent' }),
      makeSpout: (conf) => new MetaqSpout({
        client: { serverUrl: `meta://127.0.0.1:${tb.port}`, offsetsFile: join(dir.path, `${name}.offsets.json`),
          recoverDir: join(dir.path, `${name}.recover`), logger: pino({ level: 'silent' }) },
        topic, group: 'g', maxPending: Number(conf['topology.max.spout.pending']),
      }),
    });
    const running = ml.run();
    const d = await StormDriver.over(stdin, stdout, 4242, { pidDir: dir.path, conf: { 'topology.max.spout.pending': 1 } });
    assert.ok(existsSync(join(dir.path, '4242')));
    const [e] = await emitted(d, 1);
    assert.deepEqual((await d.next()).emits, [], 'the conf caps pending at 1');
    await d.ack(e!.id!);
    await emitted(d, 1);
    stdin.end();
    assert.equal(await running, 0);
  });

  it('ends with status 1 and writes nothing to stdout when the first frame is not a handshake', async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    let made = 0;
    const ml = new MultilangSpout({ input: stdin, output: stdout, logger: pino({ level: 'silent' }),
      makeSpout: () => { made++; throw new Error('not reached'); } });
    const running = ml.run();
    stdin.write(`${javaJson({ command: 'next', id: '' })}\nend\n`);
    assert.equal(await running, 1);
    assert.equal(stdout.read(), null, 'no frame before a pid');
    assert.equal(made, 0);
  });

  it('refuses usage errors with exit 2 and a message naming the problem', async () => {
    assert.deepEqual(parseSpoutArgs(['--topic', 't', '--group', 'g', '--zk', 'h:2181', '--zk-root', '/m']), {
      topic: 't', group: 'g', client: { zkConnect: 'h:2181', zkRoot: '/m' }, maxPending: undefined, maxReplays: undefined,
      scheme: 'string', batch: 1, consumer: {}, logLevel: process.env.METAQ_LOG_LEVEL ?? 'warn',
    });
    const cases: Array<[string[], RegExp]> = [
      [['--group', 'g', '--server', 'meta://h:1'], /missing --topic/],
      [['--topic', 't', '--server', 'meta://h:1'], /missing --group/],
      [['--topic', 't', '--group', 'g'], /one of --server .* or --zk/],
      [['--topic', 't', '--group', 'g', '--server', 'meta://h:1', '--zk', 'h:2181'], /one of --server/],
      [['--topic', 't', '--group', 'g', '--server', 'h:1'], /--server must be meta:\/\/host:port/],
      [['--topic', 't', '--group', 'g', '--server', 'meta://h:1', '--max-pending', '0'], /--max-pending must be an integer >= 1, got 0/],
      [['--topic', 't', '--group', 'g', '--server', 'meta://h:1', '--batch', 'x'], /--batch must be an integer >= 1, got x/],
      [['--topic', 't', '--group', 'g', '--server', 'meta://h:1', '--scheme', 'avro'], /--scheme must be one of string, json, base64, message/],
      [['--topic', 't', '--group', 'g', '--server', 'meta://h:1', '--log-level', 'loud'], /--log-level must be one of/],
      [['--topic', 't', '--group', 'g', '--server', 'meta://h:1', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, why] of cases) assert.match(String(parseSpoutArgs(args)), why, args.join(' '));
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [BIN, 'spout', '--group', 'g', '--server', 'meta://h:1'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '', 'stdout stays clean');
    assert.match(r.stderr, /metaq spout: missing --topic <topic>\nusage: metaq spout/);
  });
});

/** Committed offsets of group g by partition number, from the local offsets file. */
function committedOffsets(file: string): Map<number, number> {
  const out = new Map<number, number>();
  if (!existsSync(file)) return out;
  const all = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Array<{ offset: number; partition: { partition: number } }>>;
  for (const e of all.g ?? []) out.set(e.partition.partition, e.offset);
  return out;
}
