import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ChecksumMismatchError } from '../../sdk/errors.js';
import { NO_CHECKSUM } from '../../sdk/protocol/commands.js';
import { crc32Masked, encodeRecord, joinId } from '../../sdk/protocol/record.js';
import { MessageStore } from '../store/message-store.js';
import { captureLogger, makeTempDir, makeTestConfig, stored } from '../store/testing.js';
import { pushedCrc, replicaAppend, ReplicaDivergenceError, type ReplicaRecord } from './replica-append.js';

const temps: { remove: () => Promise<void> }[] = [];
const stores: MessageStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const t of temps) await t.remove();
});

async function openStore(unflushThreshold: number): Promise<{ store: MessageStore; dir: string }> {
  const t = await makeTempDir('metaq-replica-');
  temps.push(t);
  const store = await MessageStore.open({ config: makeTestConfig(t.path, { system: { unflushThreshold, numPartitions: 4 } }), logger: captureLogger().logger });
  stores.push(store);
  return { store, dir: t.path };
}

function record(id: number, text: string, flag = 0): ReplicaRecord {
  const data = Buffer.from(text);
  return { idHi: 0, idLo: id, flag, data, crc: crc32Masked(data) };
}

describe('ha/replica-append', () => {
  it('appends at the local end a record byte-identical to the master\'s', async () => {
    const { store, dir } = await openStore(0);
    const log = store.getOrCreate('ra', 0);
    const a = record(7, 'hello', 1);
    const b = record(8, 'world');
    assert.equal(replicaAppend(log, 0, a), 'appended');
    assert.equal(replicaAppend(log, 25, b), 'appended');
    await stored(log);
    const want = Buffer.concat([encodeRecord(joinId(0, 7), 1, a.data), encodeRecord(joinId(0, 8), 0, b.data)]);
    assert.ok((await readFile(join(dir, 'ra-0', '00000000000000000000.meta'))).equals(want));
  });

  it('finds a record already stored below the end "present", waiting for its fsync in group commit', async () => {
    const { store } = await openStore(0);
    const log = store.getOrCreate('ra', 0);
    const a = record(1, 'first');
    replicaAppend(log, 0, a);
    // Not yet fsynced (group commit: not readable): the check waits for the store instead of failing.
    assert.equal(log.readableEnd, 0);
    const check = replicaAppend(log, 0, { ...a });
    assert.ok(check instanceof Promise);
    assert.equal(await check, 'present');
    assert.equal(log.endOffset, 25, 'nothing written twice');
  });

  it('rejects a different record below the end as a divergence naming the partition, offset and both ids', async () => {
    const { store } = await openStore(10);
    const log = store.getOrCreate('ra', 3);
    replicaAppend(log, 0, record(1, 'first'));
    replicaAppend(log, 25, record(2, 'other'));
    await stored(log);
    const err = await (replicaAppend(log, 25, record(99, 'other')) as Promise<string>).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ReplicaDivergenceError);
    assert.match(err.message, /ra-3 diverges from the master at offset 25: local record 2, master's record 99 \(different msgId\)/);
    // A record boundary that does not line up locally differs too.
    const off = await (replicaAppend(log, 10, record(1, 'first')) as Promise<string>).then(() => null, (e: unknown) => e);
    assert.ok(off instanceof ReplicaDivergenceError);
    assert.equal(log.endOffset, 50);
  });

  it('answers "ahead" beyond the local end and writes nothing', async () => {
    const { store } = await openStore(0);
    const log = store.getOrCreate('ra', 0);
    assert.equal(replicaAppend(log, 100, record(1, 'x')), 'ahead');
    assert.equal(log.endOffset, 0);
  });

  it('checks the checksum of pushed data before anything is stored', () => {
    const data = Buffer.from('payload');
    assert.equal(pushedCrc(data, crc32Masked(data)), crc32Masked(data));
    assert.equal(pushedCrc(data, NO_CHECKSUM), crc32Masked(data));
    assert.throws(() => pushedCrc(data, crc32Masked(data) ^ 1), ChecksumMismatchError);
  });
});
