import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CorruptRecordError, OffsetOutOfRangeError } from '../../sdk/errors.js';
import { crc32Masked, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import { MessageStore } from './message-store.js';
import type { PartitionLog } from './partition-log.js';
import { endOfLargestIdAtMost, findLargestIdAtMost, recordStartAtOrBefore, scanRecords } from './record-scan.js';
import { captureLogger, makeTempDir, makeTestConfig, rng, seedFrom, stored } from './testing.js';

const temps: { remove: () => Promise<void> }[] = [];
const stores: MessageStore[] = [];
after(async () => {
  for (const s of stores) await s.close();
  for (const t of temps) await t.remove();
});

interface Written { offset: number; size: number; id: bigint; flag: number }

/** A store with segments of `segmentSize` bytes and one partition holding records of the given DATA sizes and ids. */
async function logWith(sizes: readonly number[], ids: readonly bigint[], segmentSize = 4096):
  Promise<{ log: PartitionLog; written: Written[] }> {
  const t = await makeTempDir();
  temps.push(t);
  const store = await MessageStore.open({ config: makeTestConfig(t.path, { system: { maxSegmentSize: segmentSize, maxMessageSize: 1 << 20 } }),
    logger: captureLogger().logger });
  stores.push(store);
  const log = store.getOrCreate('scan', 0);
  const written: Written[] = [];
  sizes.forEach((n, i) => {
    const data = Buffer.alloc(n, i & 0xff);
    const id = ids[i]!;
    const flag = i % 3;
    const offset = log.append(Number(id >> 32n) | 0, Number(id & 0xffffffffn), flag, data, crc32Masked(data));
    written.push({ offset, size: RECORD_HEADER_SIZE + n, id, flag });
  });
  await stored(log);
  return { log, written };
}

const seq = (n: number, step = 10n, first = 1000n): bigint[] => Array.from({ length: n }, (_, i) => first + BigInt(i) * step);

describe('store/record-scan', () => {
  it('visits every record of every segment with its offset, size, id and flag, whatever the chunk size', async () => {
    const seed = seedFrom('RECORD_SCAN_SEED');
    const r = rng(seed);
    const sizes = Array.from({ length: 300 }, () => Math.floor(r() * 600));
    const { log, written } = await logWith(sizes, seq(sizes.length, 1n, (1n << 40n) + 7n));
    assert.ok(log.segmentStarts().length > 5, 'several segments');
    for (const chunkSize of [1, 20, 33, 700, 1 << 20]) {
      const seen: Written[] = [];
      const end = await scanRecords(log, log.startOffset, (rec) => {
        seen.push({ offset: rec.offset, size: rec.size, id: rec.id, flag: rec.flag });
      }, { chunkSize });
      assert.deepEqual(seen, written, `chunk ${chunkSize} (seed ${seed})`);
      assert.equal(end, log.endOffset);
    }
  });

  it('starts at any record boundary, stops at `to` or when the visitor says so, and reads a record larger than a chunk whole', async () => {
    const { log, written } = await logWith([10, 5000, 10, 10, 3000, 10], seq(6), 1 << 20);
    const offsets: number[] = [];
    const end = await scanRecords(log, written[1]!.offset, (rec) => { offsets.push(rec.offset); }, { chunkSize: 64, to: written[4]!.offset });
    assert.deepEqual(offsets, [written[1]!.offset, written[2]!.offset, written[3]!.offset]);
    assert.equal(end, written[4]!.offset);
    let n = 0;
    const stop = await scanRecords(log, 0, () => ++n < 2);
    assert.equal(n, 2);
    assert.equal(stop, written[2]!.offset, 'the offset after the record that stopped the scan');
  });

  it('refuses a start that is not a record boundary or lies below the log', async () => {
    const { log } = await logWith([100, 100], seq(2));
    await assert.rejects(scanRecords(log, 7, () => undefined), CorruptRecordError);
    await assert.rejects(scanRecords(log, -1, () => undefined), OffsetOutOfRangeError);
  });

  it('finds the start of the record holding every byte of the log', async () => {
    const { log, written } = await logWith(Array.from({ length: 60 }, (_, i) => (i * 37) % 150), seq(60), 1024);
    for (const w of written) {
      for (let b = w.offset; b < w.offset + w.size; b++) assert.equal(await recordStartAtOrBefore(log, b), w.offset, `byte ${b}`);
    }
    assert.equal(await recordStartAtOrBefore(log, log.endOffset), log.endOffset);
    assert.equal(await recordStartAtOrBefore(log, log.endOffset + 99), log.endOffset);
    await assert.rejects(recordStartAtOrBefore(log, -1), OffsetOutOfRangeError);
  });

  it('finds the end of the record with the largest id at most a given id, across segments', async () => {
    const ids = seq(200, 10n, 5000n);
    const { log, written } = await logWith(Array.from({ length: 200 }, () => 80), ids, 1000);
    assert.ok(log.segmentStarts().length > 10);
    assert.deepEqual(await findLargestIdAtMost(log, 4999n), { end: 0, id: undefined });
    assert.equal(await endOfLargestIdAtMost(log, -1n), 0, 'a negative id is below every id');
    for (let i = 0; i < ids.length; i++) {
      const w = written[i]!;
      assert.deepEqual(await findLargestIdAtMost(log, ids[i]!), { end: w.offset + w.size, id: ids[i] }, `id ${ids[i]}`);
      assert.deepEqual(await findLargestIdAtMost(log, ids[i]! + 9n), { end: w.offset + w.size, id: ids[i] }, `between ids after ${ids[i]}`);
    }
    assert.equal(await endOfLargestIdAtMost(log, 1n << 62n), log.endOffset);
  });

  it('compares ids as signed 64-bit numbers across the 32-bit halves', async () => {
    const ids = [(1n << 32n) - 1n, 1n << 32n, (5n << 32n) + 3n];
    const { log, written } = await logWith([1, 1, 1], ids);
    assert.deepEqual(await findLargestIdAtMost(log, (1n << 32n) + 1n), { end: written[1]!.offset + written[1]!.size, id: 1n << 32n });
    assert.deepEqual(await findLargestIdAtMost(log, (1n << 32n) - 2n), { end: 0, id: undefined });
  });

  it('answers the log start for an empty log', async () => {
    const { log } = await logWith([], []);
    assert.deepEqual(await findLargestIdAtMost(log, 10n), { end: 0, id: undefined });
    assert.equal(await scanRecords(log, 0, () => assert.fail('no record')), 0);
  });
});
