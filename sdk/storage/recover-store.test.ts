import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, ShuttingDownError } from '../errors.js';
import type { Message } from '../message.js';
import { decodeRecoverRecord, encodeRecoverRecord } from './recover-record.js';
import { RecoverStore, recoverStoreDir } from './recover-store.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'metaq-recover-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function message(i: number, overrides: Partial<Message> = {}): Message {
  return {
    topic: 'orders', partition: { brokerId: 3, partition: 7 }, offset: 1000 * i, nextOffset: 1000 * i + 57,
    id: 0x7fff_ffff_ffff_0000n + BigInt(i), attribute: i % 2 === 0 ? `attr-${i}` : null, flag: i % 2 === 0 ? 1 : 0,
    payload: Buffer.from(`payload ${i} ✓`), value: Buffer.alloc(0), redeliveries: 5, ...overrides,
  };
}

async function all(store: RecoverStore) {
  const out = [];
  for await (const e of store.entries()) out.push(e);
  return out;
}

describe('storage/recover-store', () => {
  it('round-trips every field a redelivery needs, without the value', () => {
    const m = message(2, { attribute: '', payload: Buffer.alloc(0), offset: 2 ** 52, id: -5n });
    const e = decodeRecoverRecord(9, encodeRecoverRecord(m, 1234.5, 3));
    const { value: _value, ...rest } = m;
    assert.deepEqual({ ...e, payload: Buffer.from(e.payload) }, { ...rest, key: 9, attempts: 3, storedAt: 1234.5 });
    assert.equal(decodeRecoverRecord(1, encodeRecoverRecord(message(1), 0)).attribute, null);
  });

  it('stores messages and gives them back in order', async () => {
    const store = await RecoverStore.open(root, 'orders', 'billing');
    const t0 = Date.now();
    const keys = [];
    for (let i = 0; i < 5; i++) keys.push(await store.add(message(i)));
    assert.equal(store.size, 5);
    const entries = await all(store);
    assert.deepEqual(entries.map((e) => e.key), keys);
    assert.deepEqual(entries.map((e) => e.payload.toString()), [0, 1, 2, 3, 4].map((i) => `payload ${i} ✓`));
    assert.deepEqual(entries.map((e) => e.attribute), ['attr-0', null, 'attr-2', null, 'attr-4']);
    assert.ok(entries.every((e) => e.attempts === 0 && e.storedAt >= t0 && e.storedAt <= Date.now()));
    assert.equal(entries[4]!.id, 0x7fff_ffff_ffff_0004n);
    assert.deepEqual(entries[4]!.partition, { brokerId: 3, partition: 7 });
    await store.close();
  });

  it('keeps entries, order and attempt counts across a restart', async () => {
    const store = await RecoverStore.open(root, 'restart', 'g1');
    const keys = [];
    for (let i = 0; i < 6; i++) keys.push(await store.add(message(i, { topic: 'restart' })));
    assert.equal(await store.markAttempt(keys[1]!), 1);
    assert.equal(await store.markAttempt(keys[1]!), 2);
    assert.deepEqual(await Promise.all([store.markAttempt(keys[4]!), store.markAttempt(keys[4]!),
      store.markAttempt(keys[4]!)]), [1, 2, 3], 'concurrent marks are counted one by one');
    assert.equal(await store.remove(keys[2]!), true);
    await store.close();

    const again = await RecoverStore.open(root, 'restart', 'g1');
    const entries = await all(again);
    assert.deepEqual(entries.map((e) => e.key), [keys[0], keys[1], keys[3], keys[4], keys[5]]);
    assert.deepEqual(entries.map((e) => e.attempts), [0, 2, 0, 3, 0]);
    assert.equal(await again.markAttempt(keys[1]!), 3);
    assert.equal((await again.get(keys[1]!))?.attempts, 3);
    await assert.rejects(again.markAttempt(keys[2]!), InvalidArgumentError);
    assert.equal(await again.remove(keys[2]!), false);
    await again.close();
    await assert.rejects(again.add(message(9)), ShuttingDownError);
  });

  it('keeps one directory per topic@group, unambiguous when a name holds an @', async () => {
    const a = await RecoverStore.open(root, 'a', 'b@c');
    const b = await RecoverStore.open(root, 'a@b', 'c');
    assert.notEqual(a.dir, b.dir);
    assert.equal(recoverStoreDir('/r', 'orders', 'billing'), join('/r', 'orders@billing'));
    await a.add(message(1));
    assert.equal(b.size, 0);
    await Promise.all([a.close(), b.close()]);
    assert.ok((await readdir(root)).includes('a@b%40c'));
  });
});
