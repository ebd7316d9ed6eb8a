/**
 * Retry then local-disk recovery, end to end through the public API against a real broker process: in-line retries,
 * the move to the recover store, a consumer restart with a message still in the store, and the dead-letter topic.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createClient, type Message, type MetaqClient } from '../sdk/index.js';
import { killSpawnedBrokers, spawnBroker, type BrokerProcess } from './harness/broker-process.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

describe('sdk retry and recover store (against a broker process)', () => {
  let broker: BrokerProcess;
  let dir: { path: string; remove(): Promise<void> };
  const clients: MetaqClient[] = [];
  before(async () => {
    dir = await tempDir('metaq-retry-');
    broker = await spawnBroker({ dataDir: join(dir.path, 'data'), set: { 'system.longPollTimeoutMs': '200' }, logLevel: 'warn' });
  });
  after(async () => {
    for (const c of clients) await c.close();
    await killSpawnedBrokers();
    await dir.remove();
  });

  async function client(): Promise<MetaqClient> {
    const c = await createClient({
      serverUrl: `meta://127.0.0.1:${broker.port}`, recoverDir: join(dir.path, 'recover'),
      offsetsFile: join(dir.path, 'offsets.json'), logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    });
    clients.push(c);
    return c;
  }

  it('retries in line, stores the message, moves on, and a restarted consumer delivers it from the store', async () => {
    const topic = uniqueName('retry');
    const group = uniqueName('g');
    const a = await client();
    for (const v of ['a', 'poison', 'b', 'c']) await a.producer().send({ topic, value: v, partition: 0 });
    const seen: string[] = [];
    const first = a.consumer({ group, maxFetchRetries: 2, maxFetchDelayMs: 100, recoverIntervalMs: 3_600_000 });
    const listener = first.subscribe(topic, (m: Message) => {
      const v = m.value.toString();
      seen.push(`${v}#${m.redeliveries}`);
      if (v === 'poison') throw new Error('not now');
    });
    await waitFor(() => seen.includes('c#0'), { what: 'the partition to move past the poison message' });
    assert.deepEqual(seen, ['a#0', 'poison#0', 'poison#1', 'poison#2', 'b#0', 'c#0']);
    await listener.close();
    await a.close();

    // A new process on the same recoverDir: only the stored message comes again, not the committed ones.
    const b = await client();
    const again: string[] = [];
    b.consumer({ group, recoverIntervalMs: 100 }).subscribe(topic, (m: Message) => { again.push(m.value.toString()); });
    await waitFor(() => again.includes('poison'), { what: 'the stored message to be delivered after the restart' });
    assert.deepEqual(again, ['poison']);
  });

  it('sends a message that fails every recover round to the dead-letter topic', async () => {
    const topic = uniqueName('dlq');
    const c = await client();
    await c.producer().send({ topic, value: 'always-fails', attribute: 'tag', partition: 1 });
    let attempts = 0;
    c.consumer({ group: uniqueName('g'), maxFetchRetries: 1, maxFetchDelayMs: 50, recoverIntervalMs: 100, maxRecoverAttempts: 2 })
      .subscribe(topic, () => {
        attempts++;
        throw new Error('never');
      });
    const dead = await waitFor(async () => {
      const partitions = await c.partitionsFor(`${topic}.DLQ`).catch(() => []);
      for (const p of partitions) {
        const r = await c.get(`${topic}.DLQ`, p, 0);
        if (r.messages.length > 0) return r.messages;
      }
      return undefined;
    }, { timeoutMs: 20_000, what: 'the message in the dead-letter topic' });
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.payload.toString(), 'always-fails');
    assert.equal(dead[0]!.attribute, 'tag');
    assert.ok(attempts >= 2 + 2, `delivered ${attempts} times before dead-lettering`);
  });
});
