import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { crc32Masked, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import { MessageStore } from '../store/message-store.js';
import type { PartitionLog } from '../store/partition-log.js';
import { captureLogger, makeTempDir, makeTestConfig, rng, seedFrom, stored } from '../store/testing.js';
import { findDivergence } from './divergence.js';
import type { ReadMaster } from './divergence.js';

const temps: { remove: () => Promise<void> }[] = [];
const stores: MessageStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const t of temps) await t.remove();
});

const SEGMENT = 64 * 1024;

/** A fresh partition log in its own store and temp dir (the "master" side is just another one). */
async function newLog(start = 0): Promise<PartitionLog> {
  const t = await makeTempDir('metaq-divergence-');
  temps.push(t);
  const store = await MessageStore.open({ config: makeTestConfig(t.path, { system: { maxSegmentSize: SEGMENT } }),
    logger: captureLogger().logger });
  stores.push(store);
  return store.getOrCreate('div', 0, start);
}

interface Rec { readonly id: number; readonly data: Buffer }

/** Records with ids from `firstId`, DATA of varied sizes derived from `tag` (so two histories differ byte for byte). */
function records(n: number, firstId: number, tag: number, size = (i: number) => 30 + ((i * 7919 + tag) % 400)): Rec[] {
  return Array.from({ length: n }, (_, i) => {
    const data = Buffer.alloc(size(i));
    for (let b = 0; b < data.length; b++) data[b] = (i * 31 + b * 7 + tag) & 0xff;
    return { id: firstId + i, data };
  });
}

async function append(log: PartitionLog, recs: readonly Rec[]): Promise<void> {
  for (const r of recs) log.append(0, r.id, 0, r.data, crc32Masked(r.data));
  await stored(log);
}

const bytesOf = (recs: readonly Rec[]): number => recs.reduce((s, r) => s + RECORD_HEADER_SIZE + r.data.length, 0);

/** The master's `get`, counting the bytes it served. */
function reader(master: PartitionLog): { read: ReadMaster; served: () => number } {
  let served = 0;
  return {
    read: async (offset, maxSize) => {
      const b = await master.read(offset, maxSize);
      served += b.length;
      return b;
    },
    served: () => served,
  };
}

describe('ha/divergence', () => {
  it('finds nothing to cut in identical logs, or when the local log is a prefix of the master\'s', async () => {
    const common = records(500, 1, 0);
    const local = await newLog();
    const master = await newLog();
    await append(local, common);
    await append(master, common);
    assert.equal(await findDivergence(local, reader(master).read, master.endOffset), undefined);
    await append(master, records(50, 501, 0));
    assert.equal(await findDivergence(local, reader(master).read, master.endOffset), undefined);
  });

  it('cuts at the master\'s end when the local log ran past it', async () => {
    const common = records(400, 1, 0);
    const local = await newLog();
    const master = await newLog();
    await append(local, common);
    await append(master, common);
    await append(local, records(30, 401, 0));
    assert.equal(await findDivergence(local, reader(master).read, master.endOffset), bytesOf(common));
  });

  it('cuts at the end of the common prefix when both logs were extended differently', async () => {
    const seed = seedFrom('DIVERGENCE_SEED');
    const r = rng(seed);
    for (let round = 0; round < 5; round++) {
      const common = records(100 + Math.floor(r() * 300), 1, 0);
      const local = await newLog();
      const master = await newLog();
      await append(local, common);
      await append(master, common);
      const mine = Math.floor(r() * 40) + 1;
      await append(local, records(mine, common.length + 1, 1));
      await append(master, records(Math.floor(r() * 80) + 1, common.length + 1, 2));
      assert.equal(await findDivergence(local, reader(master).read, master.endOffset), bytesOf(common),
        `round ${round} (seed ${seed})`);
    }
  });

  it('grows its window back to a divergence older than the first window, reading in proportion to the divergent bytes', async () => {
    const common = records(8000, 1, 0);                    // ~2 MiB, about 30 segments
    const local = await newLog();
    const master = await newLog();
    await append(local, common);
    await append(master, common);
    const ours = records(1200, 8001, 5);                   // ~280 KiB divergent: beyond a 64 KiB first window
    await append(local, ours);
    await append(master, records(1300, 8001, 9));
    const { read, served } = reader(master);
    assert.equal(await findDivergence(local, read, master.endOffset), bytesOf(common));
    const divergent = bytesOf(ours);
    assert.ok(served() <= 2 * divergent + 64 * 1024, `read ${served()} bytes of the master for ${divergent} divergent bytes`);
    assert.ok(served() < bytesOf(common) / 3, 'far from the whole log');
  });

  it('is not fooled by bytes that agree by chance after the divergence', async () => {
    const zeros = (n: number, first: number, size: number): Rec[] =>
      Array.from({ length: n }, (_, i) => ({ id: first + i, data: Buffer.alloc(size) }));
    const common = records(200, 1, 0);
    const local = await newLog();
    const master = await newLog();
    await append(local, common);
    await append(master, common);
    await append(local, zeros(400, 1000, 300));
    await append(master, zeros(500, 2000, 301));
    assert.equal(await findDivergence(local, reader(master).read, master.endOffset, { initialWindow: 512 }), bytesOf(common));
  });

  it('compares from the master\'s start when its retention removed older segments', async () => {
    const common = records(1500, 1, 0);
    const local = await newLog();
    await append(local, common);
    const masterStart = local.segmentStarts()[2]!;
    // The master holds the same bytes from a later segment start on.
    const master = await newLog(masterStart);
    let at = 0;
    await append(master, common.filter((r) => {
      const keep = at >= masterStart;
      at += RECORD_HEADER_SIZE + r.data.length;
      return keep;
    }));
    assert.equal(master.startOffset, masterStart);
    assert.equal(await findDivergence(local, reader(master).read, master.endOffset), undefined);
    await append(local, records(600, 1501, 3));
    await append(master, records(700, 1501, 4));
    assert.equal(await findDivergence(local, reader(master).read, master.endOffset, { initialWindow: 4096 }), bytesOf(common));
  });

  it('cuts at the master\'s first record when nothing the master still holds agrees', async () => {
    const local = await newLog();
    await append(local, records(1500, 1, 0));
    const masterStart = local.segmentStarts()[1]!;
    const master = await newLog(masterStart);
    await append(master, records(2000, 5000, 7));
    assert.equal(await findDivergence(local, reader(master).read, master.endOffset), masterStart);
  });
});
