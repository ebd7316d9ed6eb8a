import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ShuttingDownError, StorageError } from '../errors.js';
import { JOURNAL_HEADER_SIZE } from './journal-format.js';
import { Journal, JournalFailpoints, type JournalFailpoint } from './journal.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'metaq-journal-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirCount = 0;
function freshDir(): string {
  return join(root, `j${dirCount++}`);
}

async function contents(j: Journal): Promise<[number, string][]> {
  const out: [number, string][] = [];
  for await (const e of j.entries()) out.push([e.seq, e.record.toString()]);
  return out;
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.jnl')).sort();
}

describe('storage/journal', () => {
  it('round-trips appends, reads, updates and removes in append order', async () => {
    const j = await Journal.open(freshDir());
    const seqs = await Promise.all(['a', 'b', 'c', 'd'].map((s) => j.append(Buffer.from(s))));
    assert.deepEqual(seqs, [0, 1, 2, 3]);
    assert.equal(await j.update(1, Buffer.from('B!')), true);
    assert.equal(await j.remove(2), true);
    assert.equal(await j.remove(2), false, 'a second remove finds nothing');
    assert.equal(await j.update(2, Buffer.from('x')), false, 'a removed record cannot be updated');
    assert.equal(j.size, 3);
    assert.deepEqual(await contents(j), [[0, 'a'], [1, 'B!'], [3, 'd']]);
    assert.equal((await j.read(1))?.toString(), 'B!');
    assert.equal(await j.read(2), undefined);
    assert.equal((await j.append(Buffer.alloc(0))), 4, 'an empty record is a record');
    assert.equal((await j.read(4))?.length, 0);
    await j.close();
  });

  it('keeps entries, their order and the seq counter across a restart', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    for (let i = 0; i < 10; i++) await j.append(Buffer.from(`m${i}`));
    await j.update(3, Buffer.from('m3-updated'));
    for (const s of [0, 5, 9]) await j.remove(s);
    const before = await contents(j);
    await j.close();
    const k = await Journal.open(dir);
    assert.deepEqual(await contents(k), before);
    assert.equal(k.recovery.tornTails.length, 0);
    assert.equal(await k.append(Buffer.from('next')), 10, 'seqs are never reused, even of removed records');
    for (const [s] of await contents(k)) await k.remove(s);
    await k.close();
    const l = await Journal.open(dir);
    assert.equal(l.size, 0);
    assert.ok((await l.append(Buffer.from('again'))) > 10);
    await l.close();
  });

  it('groups the appends of one tick into one write and one fdatasync', async () => {
    const j = await Journal.open(freshDir(), { fsync: true });
    await Promise.all(Array.from({ length: 500 }, (_, i) => j.append(Buffer.from(`r${i}`))));
    assert.equal(j.stats.writes, 1);
    assert.equal(j.stats.fsyncs, 1);
    await j.append(Buffer.from('one more'));
    assert.equal(j.stats.fsyncs, 2);
    const k = await Journal.open(freshDir(), { fsync: false });
    await Promise.all(Array.from({ length: 10 }, () => k.append(Buffer.from('x'))));
    assert.equal(k.stats.fsyncs, 0);
    await Promise.all([j.close(), k.close()]);
  });

  it('rolls segments at maxSegmentBytes and reads across them', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir, { maxSegmentBytes: 1000, fsync: false });
    const body = Buffer.alloc(100, 1);
    for (let i = 0; i < 50; i++) await j.append(body);
    assert.ok((await segmentFiles(dir)).length >= 5);
    assert.equal((await contents(j)).length, 50);
    await j.close();
    const k = await Journal.open(dir, { maxSegmentBytes: 1000 });
    assert.deepEqual((await contents(k)).map(([s]) => s), Array.from({ length: 50 }, (_, i) => i));
    await k.close();
  });

  it('fails every call after close with ShuttingDownError', async () => {
    const j = await Journal.open(freshDir());
    const pending = j.append(Buffer.from('accepted before close'));
    await j.close();
    assert.equal(await pending, 0, 'what was accepted before close is written');
    await assert.rejects(j.append(Buffer.from('x')), ShuttingDownError);
    await assert.rejects(j.remove(0), ShuttingDownError);
    await assert.rejects(j.read(0), ShuttingDownError);
    await assert.rejects(contents(j), ShuttingDownError);
  });

  it('refuses to open a directory that is already open in this process', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    await assert.rejects(Journal.open(dir), StorageError);
    await j.close();
    await (await Journal.open(dir)).close();
  });

  it('never returns bytes damaged after open: read throws, entries skips', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir);
    for (const s of ['first', 'second', 'third']) await j.append(Buffer.from(s));
    const [file] = await segmentFiles(dir);
    const path = join(dir, file!);
    const bytes = await readFile(path);
    const secondBody = 2 * JOURNAL_HEADER_SIZE + 'first'.length;
    bytes[secondBody] = bytes[secondBody]! ^ 0xff;
    await writeFile(path, bytes);
    await assert.rejects(j.read(1), StorageError);
    assert.deepEqual(await contents(j), [[0, 'first'], [2, 'third']]);
    await j.close();
  });
});

describe('storage/journal recovery', () => {
  async function threeRecords(): Promise<{ bytes: Buffer; starts: number[] }> {
    const dir = freshDir();
    const j = await Journal.open(dir);
    for (const s of ['alpha', 'bravo-bravo', 'charlie-charlie-charlie']) await j.append(Buffer.from(s));
    await j.close();
    const bytes = await readFile(join(dir, (await segmentFiles(dir))[0]!));
    const starts = [0, JOURNAL_HEADER_SIZE + 5, 2 * JOURNAL_HEADER_SIZE + 5 + 11];
    return { bytes, starts };
  }

  async function openBytes(bytes: Buffer): Promise<Journal> {
    const dir = freshDir();
    await (await Journal.open(dir)).close();
    const [file] = await segmentFiles(dir);
    await writeFile(join(dir, file!), bytes);
    return Journal.open(dir);
  }

  it('cuts a torn tail at every byte of the last record and keeps the earlier records', async () => {
    const { bytes, starts } = await threeRecords();
    const last = starts[2]!;
    for (let cut = last; cut < bytes.length; cut++) {
      const j = await openBytes(bytes.subarray(0, cut));
      assert.deepEqual(await contents(j), [[0, 'alpha'], [1, 'bravo-bravo']], `cut at ${cut}`);
      assert.equal(j.recovery.tornTails.length, cut === last ? 0 : 1, `cut at ${cut}`);
      assert.equal(await j.append(Buffer.from('after')), 2, `the lost record's seq is free again (cut at ${cut})`);
      const dir = j.dir;
      await j.close();
      const k = await Journal.open(dir);
      assert.deepEqual((await contents(k)).map(([, v]) => v), ['alpha', 'bravo-bravo', 'after']);
      assert.equal(k.recovery.tornTails.length, 0, 'the cut was made once');
      await k.close();
    }
  });

  it('cuts a damaged last record whose length is whole', async () => {
    const { bytes, starts } = await threeRecords();
    const damaged = Buffer.from(bytes);
    damaged[bytes.length - 1] = damaged[bytes.length - 1]! ^ 0x01;
    const j = await openBytes(damaged);
    assert.deepEqual((await contents(j)).map(([, v]) => v), ['alpha', 'bravo-bravo']);
    assert.deepEqual(j.recovery.tornTails.map((t) => [t.from, t.to]), [[starts[2], bytes.length]]);
    await j.close();
  });

  it('skips a middle record with any one byte flipped and keeps the others', async () => {
    const { bytes, starts } = await threeRecords();
    for (let at = starts[1]!; at < starts[2]!; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at] = damaged[at]! ^ 0x5a;
      const j = await openBytes(damaged);
      assert.deepEqual(await contents(j), [[0, 'alpha'], [2, 'charlie-charlie-charlie']], `flip at ${at}`);
      assert.equal(j.recovery.damaged.length, 1, `flip at ${at}`);
      assert.deepEqual([j.recovery.damaged[0]!.from, j.recovery.damaged[0]!.to], [starts[1], starts[2]]);
      assert.equal(j.recovery.tornTails.length, 0);
      assert.equal(await j.append(Buffer.from('d')), 3, 'seqs stay above the skipped record');
      await j.close();
    }
  });
});

describe('storage/journal compaction', () => {
  const small = { maxSegmentBytes: 4096, compactMinBytes: 8192, compactRatio: 2, fsync: false };

  it('deletes segments with no live records and keeps exactly the live ones', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir, small);
    const body = Buffer.alloc(200, 0x41);
    for (let i = 0; i < 200; i++) await j.append(body);
    for (let i = 0; i < 180; i++) await j.remove(i);
    await j.idle();
    assert.ok(j.stats.deletedSegments > 0);
    assert.deepEqual((await contents(j)).map(([s]) => s), Array.from({ length: 20 }, (_, i) => 180 + i));
    await j.close();
    const k = await Journal.open(dir, small);
    assert.deepEqual((await contents(k)).map(([s]) => s), Array.from({ length: 20 }, (_, i) => 180 + i));
    await k.close();
  });

  it('rewrites mostly-dead segments without bringing removed records back', async () => {
    const dir = freshDir();
    const j = await Journal.open(dir, small);
    const body = Buffer.alloc(200, 0x42);
    for (let i = 0; i < 300; i++) await j.append(body);
    const live = new Set<number>();
    for (let i = 0; i < 300; i++) {
      if (i % 10 === 0) live.add(i);
      else await j.remove(i);
    }
    for (let i = 0; i < 60; i++) live.add(await j.append(body)); // rolls, so the garbage ends up in sealed segments
    await j.idle();
    assert.ok(j.stats.compactions > 0, `compactions ${j.stats.compactions}`);
    let bytes = 0;
    for (const f of await segmentFiles(dir)) bytes += (await stat(join(dir, f))).size;
    assert.ok(bytes < 300 * 224 / 2, `files hold ${bytes} bytes`);
    const expected = [...live].sort((a, b) => a - b);
    assert.deepEqual((await contents(j)).map(([s]) => s), expected);
    await j.close();
    const k = await Journal.open(dir, small);
    assert.deepEqual((await contents(k)).map(([s]) => s), expected);
    await k.close();
  });

  for (const point of [JournalFailpoints.BEFORE_COMPACT_RENAME, JournalFailpoints.AFTER_COMPACT_RENAME,
    JournalFailpoints.BEFORE_SEGMENT_UNLINK]) {
    it(`survives a crash at ${point}`, async () => {
      const dir = freshDir();
      const snapshots: string[] = [];
      let workloadDone!: () => void;
      const done = new Promise<void>((r) => { workloadDone = r; });
      // The first hit waits for the workload, so every snapshot holds all of it plus part of the maintenance.
      const failpoint = async (name: JournalFailpoint): Promise<void> => {
        if (name !== point) return;
        await done;
        const snap = `${dir}-crash${snapshots.length}`;
        await cp(dir, snap, { recursive: true });
        snapshots.push(snap);
      };
      const j = await Journal.open(dir, { ...small, failpoint });
      const body = Buffer.alloc(150, 0x43);
      const live: number[] = [];
      for (let i = 0; i < 400; i++) {
        const seq = await j.append(body);
        if (i % 60 < 2 || i > 380) live.push(seq);
        else await j.remove(seq);
      }
      workloadDone();
      await j.idle();
      assert.ok(snapshots.length > 0, `the failpoint ${point} was reached`);
      const expected = await contents(j);
      assert.deepEqual(expected.map(([s]) => s), live);
      await j.close();
      for (const snap of snapshots) {
        const k = await Journal.open(snap, small);
        assert.deepEqual(await contents(k), expected, snap);
        if (point === JournalFailpoints.BEFORE_COMPACT_RENAME) assert.equal(k.recovery.removedTempFiles.length, 1);
        assert.ok(!(await readdir(snap)).some((n) => n.endsWith('.compact')));
        await k.close();
      }
    });
  }
});
