import assert from 'node:assert/strict';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { crc32Masked } from '../../sdk/protocol/record.js';
import { MessageStore } from './message-store.js';
import { captureLogger, makeTempDir, makeTestConfig } from './testing.js';
import { verifyDataDir } from './verify.js';

const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

async function dataDir(): Promise<string> {
  const t = await makeTempDir();
  temps.push(t);
  const store = await MessageStore.open({ config: makeTestConfig(t.path, { system: { maxSegmentSize: 1024, numPartitions: 2 } }), logger: captureLogger().logger });
  for (const p of [0, 1]) {
    const log = store.getOrCreate('ver-x', p);
    for (let i = 0; i < 40; i++) {
      const data = Buffer.alloc(44, i);
      log.append(0, i, 0, data, crc32Masked(data));
    }
  }
  await store.close();
  return t.path;
}

async function snapshot(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const d of (await readdir(dir)).sort()) {
    const top = await stat(join(dir, d));
    if (!top.isDirectory()) { parts.push(`${d}:${top.size}:${top.mtimeMs}`); continue; }
    for (const f of (await readdir(join(dir, d))).sort()) {
      const s = await stat(join(dir, d, f));
      parts.push(`${d}/${f}:${s.size}:${s.mtimeMs}`);
    }
  }
  return parts.join('\n');
}

describe('store/verify', () => {
  it('reports a clean store with its totals', async () => {
    const dir = await dataDir();
    const progress: number[] = [];
    const r = await verifyDataDir(dir, { onProgress: (done) => progress.push(done) });
    assert.deepEqual({ ok: r.ok, partitions: r.partitions, segments: r.segments, records: r.records, bytes: r.bytes },
      { ok: true, partitions: 2, segments: 6, records: 80, bytes: 80 * 64 });
    assert.deepEqual(progress, [1, 2]);
  });

  it('finds a flipped bit with its segment, position and offset, and modifies nothing', async () => {
    const dir = await dataDir();
    const file = join(dir, 'ver-x-1', '00000000000000001024.meta');
    const bytes = await readFile(file);
    bytes[3 * 64 + 30]! ^= 0x10;
    await writeFile(file, bytes);
    const before = await snapshot(dir);
    const r = await verifyDataDir(dir);
    assert.equal(r.ok, false);
    assert.deepEqual(r.problems, [{ partitionDir: join(dir, 'ver-x-1'), segmentFile: '00000000000000001024.meta',
      position: 192, offset: 1024 + 192, reason: 'checksum mismatch' }]);
    assert.equal(r.records, 79, 'the walk continues after a CRC mismatch');
    assert.equal(await snapshot(dir), before);
  });

  it('finds a gap between segments and a torn tail', async () => {
    const dir = await dataDir();
    const p = join(dir, 'ver-x-0');
    await rename(join(p, '00000000000000002048.meta'), join(p, '00000000000000003000.meta'));
    const last = join(dir, 'ver-x-1', '00000000000000002048.meta');
    await writeFile(last, (await readFile(last)).subarray(0, 100));
    const r = await verifyDataDir(dir);
    assert.equal(r.problems.length, 2);
    assert.match(r.problems[0]!.reason, /^gap: 00000000000000001024\.meta ends at 2048, 00000000000000003000\.meta starts at 3000/);
    assert.deepEqual({ ...r.problems[1]!, reason: '' }, { partitionDir: join(dir, 'ver-x-1'), segmentFile: '00000000000000002048.meta', position: 64, offset: 2112, reason: '' });
    assert.match(r.problems[1]!.reason, /torn tail/);
  });
});
