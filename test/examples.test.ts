/**
 * Runs every program in examples/ against a broker, as a user would run it against `npm start`, and checks what it
 * prints. Each example runs with its own HOME so local offsets and recover stores stay in a temp dir.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startCluster, type Cluster } from './harness/cluster.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir } from './harness/temp-dir.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');

describe('examples/', () => {
  let tb: TestBroker;
  let home: { path: string; remove(): Promise<void> };
  before(async () => {
    tb = await startTestBroker({ 'system.longPollTimeoutMs': '200' });
    home = await tempDir('metaq-examples-home-');
  });
  after(async () => {
    await tb.dispose();
    await home.remove();
  });

  async function example(name: string, env: Record<string, string> = {}): Promise<string[]> {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', name)], {
      cwd: ROOT, timeout: 60_000,
      env: { ...process.env, HOME: home.path, METAQ_URL: `meta://127.0.0.1:${tb.port}`, ...env },
    });
    return stdout.trim().split('\n');
  }

  it('producer.ts sends ten orders and prints their partitions and offsets', async () => {
    const lines = await example('producer.ts');
    assert.equal(lines.length, 10);
    assert.match(lines[0]!, /^sent order 0: id -?\d+ partition 0-1 offset \d+$/);
  });

  it('consumer-observable.ts reads the ten orders back', async () => {
    const lines = await example('consumer-observable.ts');
    assert.equal(lines.length, 10);
    const orders = lines.map((l) => /^got (order \d+) /.exec(l)?.[1]).sort();
    assert.deepEqual(orders, Array.from({ length: 10 }, (_, i) => `order ${i}`).sort());
  });

  it('consumer-listener.ts reads them too, with their attributes (its own group)', async () => {
    const lines = await example('consumer-listener.ts');
    assert.equal(lines.length, 10);
    assert.ok(lines.some((l) => /^got order \d+ \(attribute even\)$/.test(l)), lines.join('\n'));
  });

  it('ordered-producer.ts keeps each customer on one partition', async () => {
    const lines = await example('ordered-producer.ts');
    const byCustomer = new Map<string, Set<string>>();
    for (const l of lines) {
      const m = /^(\w+) \w+ -> partition (\S+) offset \d+$/.exec(l);
      assert.ok(m !== null, l);
      byCustomer.set(m[1]!, (byCustomer.get(m[1]!) ?? new Set()).add(m[2]!));
    }
    assert.equal(byCustomer.size, 3);
    for (const parts of byCustomer.values()) assert.equal(parts.size, 1);
  });

  it('broadcast.ts receives the three updates it sent', async () => {
    const lines = await example('broadcast.ts');
    assert.deepEqual(lines.sort(), ['update: feature-x=off', 'update: feature-x=on', 'update: limit=100']);
  });

  it('retry-and-recover.ts retries in line, then recovers the poison message from disk', async () => {
    const lines = await example('retry-and-recover.ts');
    // maxFetchRetries = 2: three in-line attempts, then the recover store delivers it until it succeeds.
    assert.deepEqual(lines.filter((l) => l.startsWith('POISON attempt')).map((l) => l.replace(/ \(.*/, '')),
      ['POISON attempt 1', 'POISON attempt 2', 'POISON attempt 3', 'POISON attempt 4', 'POISON attempt 5']);
    assert.ok(lines.includes('processed pay 30'));
    assert.ok(lines.indexOf('processed pay 30') < lines.indexOf('POISON processed from the recover store'),
      'the partition moved on while the poison message waited in the recover store');
    assert.equal(lines.at(-1), 'POISON processed from the recover store');
  });
});

describe('examples/ in cluster mode', () => {
  let cluster: Cluster;
  let home: { path: string; remove(): Promise<void> };
  before(async () => {
    cluster = await startCluster({ brokers: 3 });
    home = await tempDir('metaq-examples-home-');
  });
  after(async () => {
    await cluster?.stop();
    await home?.remove();
  });

  it('cluster-group.ts sends over three brokers and its two consumers split the partitions', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', 'cluster-group.ts')], {
      cwd: ROOT, timeout: 60_000, env: { ...process.env, HOME: home.path, METAQ_ZK: cluster.zkConnect },
    });
    const lines = stdout.trim().split('\n');
    assert.match(lines[0]!, /^sent 60 messages to cluster-demo-\d+ on brokers 0, 1, 2$/);
    assert.equal(lines[1], 'read 60 distinct messages of 12 partitions');
    const readers = lines.slice(2).map((l) => /^cluster-demo_(reader-[ab]) read from ((?:\d+-\d+ ?)+)$/.exec(l));
    assert.deepEqual(readers.map((m) => m?.[1]), ['reader-a', 'reader-b'], stdout);
    const union = new Set(readers.flatMap((m) => m![2]!.split(' ')));
    assert.equal(union.size, 12, 'every partition was read by one of them');
  });
});
