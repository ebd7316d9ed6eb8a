import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { StorageError } from '../../sdk/index.js';
import { encodeLine, LOG_FILE, WordCountStore, type CountRecord } from './count-store.js';

function rec(msg: string, words: Record<string, number>): CountRecord {
  return { msg, words: new Map(Object.entries(words)) };
}

describe('examples/word-count/count-store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metaq-wc-store-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('applies a message once, whether it comes again in the same batch or a later one', async () => {
    const store = await WordCountStore.open(dir);
    assert.deepEqual(await store.apply([rec('0-0@0', { fox: 2 }), rec('0-0@0', { fox: 2 }), rec('0-1@0', { dog: 1 })]),
      { applied: 2, duplicates: 1 });
    assert.deepEqual(await store.apply([rec('0-1@0', { dog: 1 }), rec('0-1@40', { fox: 1 })]),
      { applied: 1, duplicates: 1 });
    assert.deepEqual([...store.counts].sort(), [['dog', 1], ['fox', 3]]);
    assert.equal(store.size, 3);
    await store.close();
  });

  it('keeps counts and the applied set across a reopen, so a replay after a restart is skipped', async () => {
    const first = await WordCountStore.open(dir);
    await first.apply([rec('0-0@0', { the: 1, fox: 1 }), rec('0-0@30', { the: 2 })]);
    await first.close();
    const second = await WordCountStore.open(dir);
    assert.deepEqual(second.loaded, { messages: 2, cutBytes: 0 });
    assert.ok(second.has('0-0@30'));
    assert.deepEqual(await second.apply([rec('0-0@30', { the: 2 })]), { applied: 0, duplicates: 1 });
    assert.deepEqual([...second.counts].sort(), [['fox', 1], ['the', 3]]);
    await second.close();
  });

  it('counts words that are also names of Object.prototype members', async () => {
    const store = await WordCountStore.open(dir);
    await store.apply([{ msg: '0-0@0', words: new Map([['constructor', 2], ['__proto__', 1], ['toString', 1]]) }]);
    await store.close();
    const again = await WordCountStore.open(dir);
    assert.equal(again.counts.get('constructor'), 2);
    assert.equal(again.counts.get('__proto__'), 1);
    assert.equal(again.counts.get('toString'), 1);
    await again.close();
  });

  it('cuts a torn last record at every byte and then appends after the cut', async () => {
    const path = join(dir, LOG_FILE);
    const store = await WordCountStore.open(dir);
    await store.apply([rec('0-0@0', { a: 1 })]);
    await store.close();
    const whole = (await stat(path)).size;
    const last = encodeLine(rec('0-0@20', { b: 2, c: 1 }));
    for (let keep = 0; keep < last.length; keep++) {
      await truncate(path, whole);
      await writeFile(path, last.slice(0, keep), { flag: 'a' });
      const s = await WordCountStore.open(dir);
      assert.deepEqual(s.loaded, { messages: 1, cutBytes: keep }, `torn after ${keep} bytes`);
      assert.deepEqual([...s.counts], [['a', 1]]);
      await s.apply([rec('0-0@20', { b: 2, c: 1 })]);
      await s.close();
      const reread = await WordCountStore.open(dir);
      assert.deepEqual(reread.loaded, { messages: 2, cutBytes: 0 }, `appended cleanly after a cut of ${keep} bytes`);
      await reread.close();
    }
  });

  it('cuts a last line whose checksum does not match', async () => {
    const store = await WordCountStore.open(dir);
    await store.apply([rec('0-0@0', { a: 1 }), rec('0-0@20', { b: 1 })]);
    await store.close();
    const path = join(dir, LOG_FILE);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('{"b":1}', '{"b":9}'));
    const s = await WordCountStore.open(dir);
    assert.equal(s.loaded.messages, 1);
    assert.equal(s.counts.get('b'), undefined);
    await s.close();
  });

  it('refuses to open a log with a damaged record followed by intact ones', async () => {
    const store = await WordCountStore.open(dir);
    await store.apply([rec('0-0@0', { a: 1 }), rec('0-0@20', { b: 1 }), rec('0-0@40', { c: 1 })]);
    await store.close();
    const path = join(dir, LOG_FILE);
    await writeFile(path, (await readFile(path, 'utf8')).replace('{"b":1}', '{"b":7}'));
    await assert.rejects(WordCountStore.open(dir), (e: unknown) =>
      e instanceof StorageError && /damaged record at byte \d+ is followed by intact ones/.test(e.message));
  });

  it('refuses a directory whose LOCK names a live process', async () => {
    await writeFile(join(dir, 'LOCK'), String(process.ppid));
    await assert.rejects(WordCountStore.open(dir), /in use by process/);
  });
});
