import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ConfigError, InvalidArgumentError, ShuttingDownError } from '../errors.js';
import { LocalFileOffsetStore } from './local-file-offset-store.js';
import type { CommittedOffset } from './offset-store.js';

function at(topic: string, brokerId: number, partition: number, offset: number, msgId = -1n): CommittedOffset {
  return { topic, partition: { brokerId, partition }, offset, msgId };
}

describe('offsets/local-file-offset-store', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metaq-offsets-'));
    file = join(dir, 'nested', 'offsets.json');
  });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('round-trips offsets and 64-bit message ids through the file, creating its directory', async () => {
    const store = LocalFileOffsetStore.forFile(file);
    assert.equal(await store.load('g', 'orders', { brokerId: 0, partition: 0 }), undefined);
    await store.commit('g', [at('orders', 0, 0, 100, 9223372036854775807n), at('orders', 0, 1, 200, 5n)]);
    await store.commit('g', [at('orders', 0, 0, 150, 9223372036854775806n)]);
    await store.close();

    const reopened = new LocalFileOffsetStore(file);
    assert.deepEqual(await reopened.load('g', 'orders', { brokerId: 0, partition: 0 }),
      at('orders', 0, 0, 150, 9223372036854775806n));
    assert.deepEqual(await reopened.load('g', 'orders', { brokerId: 0, partition: 1 }), at('orders', 0, 1, 200, 5n));
    assert.equal(await reopened.load('other', 'orders', { brokerId: 0, partition: 1 }), undefined);
    await reopened.close();
    const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown[]>;
    assert.deepEqual(json.g?.[0],
      { offset: 150, partition: { partition: 0, brokerId: 0 }, topic: 'orders', msgId: '9223372036854775806' });
  });

  it("loads MetaQ's own file and keeps its entries when committing", async () => {
    await writeFile(file.replace('nested/', ''), '{"test-grp":[{"offset":0,"partition":{"partition":0,' +
      '"brokerId":100,"acked":false,"rollback":true,"autoAck":false},"topic":"test-topic"},{"offset":130835445,' +
      '"partition":{"partition":0,"brokerId":101},"topic":"test-topic"}]}');
    const store = LocalFileOffsetStore.forFile(join(dir, 'offsets.json'));
    assert.equal((await store.load('test-grp', 'test-topic', { brokerId: 101, partition: 0 }))?.offset, 130835445);
    await store.commit('test-grp', [at('test-topic', 100, 0, 64)]);
    await store.close();
    const reopened = LocalFileOffsetStore.forFile(join(dir, 'offsets.json'));
    assert.equal((await reopened.load('test-grp', 'test-topic', { brokerId: 100, partition: 0 }))?.offset, 64);
    assert.equal((await reopened.load('test-grp', 'test-topic', { brokerId: 101, partition: 0 }))?.offset, 130835445);
    await reopened.close();
  });

  it('ignores a temp file left by a crash before the rename and overwrites it on the next commit', async () => {
    const store = LocalFileOffsetStore.forFile(file);
    await store.commit('g', [at('t', 0, 0, 10)]);
    await store.close();
    await writeFile(`${file}.tmp`, '{"g":[{"offset":999,"parti');

    const reopened = LocalFileOffsetStore.forFile(file);
    assert.equal((await reopened.load('g', 't', { brokerId: 0, partition: 0 }))?.offset, 10);
    await reopened.commit('g', [at('t', 0, 0, 20)]);
    await reopened.close();
    assert.deepEqual(await readdir(join(dir, 'nested')), ['offsets.json']);
    assert.match(await readFile(file, 'utf8'), /"offset":20/);
  });

  it('keeps a parseable file with every acknowledged commit when the writer is killed at random moments', async () => {
    const seed = Number(process.env.METAQ_SEED ?? Date.now() % 100_000);
    console.log(`kill-during-commit seed=${seed} (replay with METAQ_SEED=${seed})`);
    let state = seed;
    const next = (n: number): number => { state = (state * 1103515245 + 12345) % 2 ** 31; return state % n; };
    const storeUrl = new URL('./local-file-offset-store.ts', import.meta.url).href;
    for (let round = 0; round < 5; round++) {
      const script = `const { LocalFileOffsetStore } = await import(${JSON.stringify(storeUrl)});` +
        `const s = LocalFileOffsetStore.forFile(${JSON.stringify(file)});` +
        'const start = (await s.load("g", "t", { brokerId: 0, partition: 0 }))?.offset ?? 0;' +
        'for (let i = start + 1; ; i++) { await s.commit("g", [{ topic: "t", partition: { brokerId: 0, partition: 0 },' +
        ' offset: i, msgId: BigInt(i) * 1000000000000n }]); process.stdout.write(i + "\\n"); }';
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script],
        { stdio: ['ignore', 'pipe', 'inherit'] });
      const killAfter = 1 + next(40);
      let lastAcked = 0;
      let acks = 0;
      for await (const line of createInterface({ input: child.stdout })) {
        lastAcked = Number(line);
        if (++acks === killAfter) child.kill('SIGKILL');
      }
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
      assert.equal(child.signalCode, 'SIGKILL', `round ${round}: the writer was killed, not failed`);
      const store = LocalFileOffsetStore.forFile(file);
      const saved = await store.load('g', 't', { brokerId: 0, partition: 0 });
      await store.close();
      assert.ok(saved !== undefined && saved.offset >= lastAcked,
        `round ${round}: saved ${saved?.offset} must cover acked ${lastAcked}`);
      assert.equal(saved.msgId, BigInt(saved.offset) * 1000000000000n);
    }
  });

  for (const [point, survivor] of [['offsets.before-fsync', 1], ['offsets.before-rename', 1],
    ['offsets.before-dir-fsync', 2]] as const) {
    it(`leaves the old or the new file, whole, when the process dies at ${point}`, async () => {
      const storeUrl = new URL('./local-file-offset-store.ts', import.meta.url).href;
      const script = `const m = await import(${JSON.stringify(storeUrl)});` +
        `const s = m.LocalFileOffsetStore.forFile(${JSON.stringify(file)});` +
        'const p = { brokerId: 0, partition: 0 };' +
        'await s.commit("g", [{ topic: "t", partition: p, offset: 1, msgId: 1n }]);' +
        `m.offsetFileFailpoints.hook = (at) => { if (at === ${JSON.stringify(point)}) process.kill(process.pid, "SIGKILL"); };` +
        'await s.commit("g", [{ topic: "t", partition: p, offset: 2, msgId: 2n }]);';
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script],
        { stdio: ['ignore', 'inherit', 'inherit'] });
      const [, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null];
      assert.equal(signal, 'SIGKILL');
      const store = LocalFileOffsetStore.forFile(file);
      assert.deepEqual(await store.load('g', 't', { brokerId: 0, partition: 0 }),
        at('t', 0, 0, survivor, BigInt(survivor)));
      await store.commit('g', [at('t', 0, 0, 3)]);
      await store.close();
      assert.deepEqual(await readdir(join(dir, 'nested')), ['offsets.json']);
    });
  }

  it('lets consumers of two groups share one file without overwriting each other', async () => {
    const a = LocalFileOffsetStore.forFile(file);
    const b = LocalFileOffsetStore.forFile(join(dir, 'nested', '.', 'offsets.json'));
    await Promise.all([
      a.commit('group-a', [at('t', 0, 0, 1)]),
      b.commit('group-b', [at('t', 0, 0, 2)]),
      a.commit('group-a', [at('t', 0, 1, 3)]),
    ]);
    await a.close();
    assert.equal((await b.load('group-a', 't', { brokerId: 0, partition: 1 }))?.offset, 3, 'b sees a\'s commits');
    await b.commit('group-b', [at('t', 0, 0, 4)]);
    await b.close();
    const reopened = LocalFileOffsetStore.forFile(file);
    assert.equal((await reopened.load('group-a', 't', { brokerId: 0, partition: 0 }))?.offset, 1);
    assert.equal((await reopened.load('group-a', 't', { brokerId: 0, partition: 1 }))?.offset, 3);
    assert.equal((await reopened.load('group-b', 't', { brokerId: 0, partition: 0 }))?.offset, 4);
    await reopened.close();
  });

  it('refuses a corrupt file with a ConfigError naming it, and never overwrites it', async () => {
    const corrupt = join(dir, 'offsets.json');
    await writeFile(corrupt, '{"g":[{"offset":12,');
    const store = LocalFileOffsetStore.forFile(corrupt);
    const named = (e: unknown): boolean => e instanceof ConfigError && e.message.includes(corrupt);
    await assert.rejects(store.load('g', 't', { brokerId: 0, partition: 0 }), named);
    await assert.rejects(store.commit('g', [at('t', 0, 0, 1)]), named);
    await assert.rejects(store.load('g', 't', { brokerId: 0, partition: 0 }), named);
    await store.close();
    assert.equal(await readFile(corrupt, 'utf8'), '{"g":[{"offset":12,');
  });

  it('serialises concurrent commits, coalescing those that arrive during a write', async () => {
    const store = LocalFileOffsetStore.forFile(file);
    const commits: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) commits.push(store.commit('g', [at('t', 0, i % 20, i)]));
    await Promise.all(commits);
    assert.ok(store.fileWrites < 200 && store.fileWrites >= 1, `${store.fileWrites} writes for 200 commits`);
    await store.close();
    const reopened = LocalFileOffsetStore.forFile(file);
    for (let p = 0; p < 20; p++) {
      assert.equal((await reopened.load('g', 't', { brokerId: 0, partition: p }))?.offset, 180 + p);
    }
    await reopened.close();
  });

  it('refuses a whole commit holding an offset it could not read back, leaving the file as it was', async () => {
    const store = LocalFileOffsetStore.forFile(file);
    await store.commit('g', [at('t', 0, 0, 5)]);
    for (const bad of [at('t', 0, 1, -1), at('t', 0, 1, 1.5), at('', 0, 1, 1), at('t', -1, 1, 1),
      at('t', 0, 1, 1, 2n ** 63n)]) {
      await assert.rejects(store.commit('g', [at('t', 0, 0, 6), bad]), InvalidArgumentError);
    }
    assert.equal((await store.load('g', 't', { brokerId: 0, partition: 0 }))?.offset, 5);
    await store.close();
    assert.match(await readFile(file, 'utf8'), /"offset":5/);
  });

  it('fails calls on a closed handle while other handles on the file keep working', async () => {
    const a = LocalFileOffsetStore.forFile(file);
    const b = LocalFileOffsetStore.forFile(file);
    await a.close();
    await a.close();
    await assert.rejects(a.commit('g', [at('t', 0, 0, 1)]), ShuttingDownError);
    await assert.rejects(a.load('g', 't', { brokerId: 0, partition: 0 }), ShuttingDownError);
    await b.commit('g', [at('t', 0, 0, 7)]);
    assert.equal((await b.load('g', 't', { brokerId: 0, partition: 0 }))?.offset, 7);
    await b.close();
  });
});
