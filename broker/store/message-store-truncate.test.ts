import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FsyncFailedError, InvalidArgumentError } from '../../sdk/errors.js';
import { crc32Masked, decodeMessageSet, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import type { BrokerConfig } from '../config/broker-config.js';
import { errnoError } from './failpoints.js';
import type { FileIO, FileStat, FsSpace, OpenMode } from './file-io.js';
import { NodeFileIO } from './file-io.js';
import { MessageStore } from './message-store.js';
import type { PartitionLog } from './partition-log.js';
import { decodeRecoveryPoints, RECOVERY_POINT_FILE } from './recovery-point-file.js';
import { captureLogger, makeTempDir, makeTestConfig, stored } from './testing.js';

const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

async function tempDir(): Promise<string> {
  const t = await makeTempDir();
  temps.push(t);
  return t.path;
}

const RECORD = 64;          // 44 DATA bytes + header
const SEGMENT = 1024;       // 16 records a segment

/** Appends `n` records of 64 bytes (id i+1, DATA filled with i) and waits until they are stored. */
async function fill(log: PartitionLog, n: number, first = 0): Promise<void> {
  for (let i = first; i < first + n; i++) {
    const data = Buffer.alloc(RECORD - RECORD_HEADER_SIZE, i & 0xff);
    log.append(0, i + 1, 0, data, crc32Masked(data));
  }
  await stored(log);
}

async function readAll(log: PartitionLog): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = log.startOffset; at < log.readableEnd;) {
    const b = await log.read(at, 1 << 20);
    parts.push(b);
    at += b.length;
  }
  return Buffer.concat(parts);
}

function config(dir: string, unflushThreshold = 0): BrokerConfig {
  return makeTestConfig(dir, { system: { maxSegmentSize: SEGMENT, unflushThreshold } });
}

/**
 * The real file layer that dies like a killed process once `crashAt` further calls have run: that call and every
 * later one fail with EIO, leaving the files exactly as the completed calls made them.
 */
class DyingIO extends NodeFileIO implements FileIO {
  crashAt = Infinity;
  private readonly fds = new Set<number>();
  private calls = 0;
  get dead(): boolean { return this.calls > this.crashAt; }
  /** Closes the descriptors the dead store left open. */
  release(): void { for (const fd of this.fds) closeSync(fd); this.fds.clear(); }
  private step(what: string): void {
    if (++this.calls > this.crashAt) throw errnoError('EIO', `process killed before ${what}`);
  }
  override async open(path: string, mode: OpenMode): Promise<number> {
    this.step('open');
    const fd = await super.open(path, mode);
    this.fds.add(fd);
    return fd;
  }
  override async close(fd: number): Promise<void> { this.step('close'); this.fds.delete(fd); return super.close(fd); }
  override async writev(fd: number, b: readonly Uint8Array[], pos: number): Promise<number> { this.step('writev'); return super.writev(fd, b, pos); }
  override async read(fd: number, b: Uint8Array, o: number, n: number, pos: number): Promise<number> { this.step('read'); return super.read(fd, b, o, n, pos); }
  override async fdatasync(fd: number): Promise<void> { this.step('fdatasync'); return super.fdatasync(fd); }
  override async ftruncate(fd: number, n: number): Promise<void> { this.step('ftruncate'); return super.ftruncate(fd, n); }
  override async rename(a: string, b: string): Promise<void> { this.step('rename'); return super.rename(a, b); }
  override async unlink(p: string): Promise<void> { this.step('unlink'); return super.unlink(p); }
  override async readdir(p: string): Promise<string[]> { this.step('readdir'); return super.readdir(p); }
  override async stat(p: string): Promise<FileStat> { this.step('stat'); return super.stat(p); }
  override async fsyncDir(p: string): Promise<void> { this.step('fsyncDir'); return super.fsyncDir(p); }
  override async statfs(p: string): Promise<FsSpace> { this.step('statfs'); return super.statfs(p); }
  startCounting(): void { this.calls = 0; }
}

describe('store/message-store truncate', () => {
  it('cuts a live log at a record boundary: later segments deleted, the holding one cut, the range logged', async () => {
    const dir = await tempDir();
    const { logger, entries } = captureLogger();
    const store = await MessageStore.open({ config: config(dir), logger });
    const log = store.getOrCreate('cut', 0);
    await fill(log, 60);                                     // 3840 bytes: segments at 0, 1024, 2048, 3072
    const before = await readAll(log);
    const at = 20 * RECORD;                                  // 1280: inside the second segment
    const report = await store.truncate('cut', 0, at);
    assert.deepEqual(report, { topic: 'cut', partition: 0, from: at, to: 3840, bytes: 3840 - at, records: 40 });
    const warn = entries.find((e) => e['msg'] === 'truncated the log: records discarded');
    assert.ok(warn !== undefined && warn['level'] === 40, 'logged at warn');
    assert.deepEqual([warn['topic'], warn['partition'], warn['from'], warn['to'], warn['bytes'], warn['records']],
      ['cut', 0, at, 3840, 3840 - at, 40]);
    assert.deepEqual(log.segmentStarts(), [0, 1024]);
    assert.deepEqual((await readdir(join(dir, 'cut-0'))).filter((n) => n.endsWith('.meta')).sort(),
      ['00000000000000000000.meta', '00000000000000001024.meta']);
    assert.equal((await stat(join(dir, 'cut-0', '00000000000000001024.meta'))).size, at - 1024);
    assert.equal(log.endOffset, at);
    assert.deepEqual(await readAll(log), before.subarray(0, at));
    const points = decodeRecoveryPoints(await readFile(join(dir, RECOVERY_POINT_FILE)), RECOVERY_POINT_FILE);
    assert.equal(points.get('cut-0'), at, 'the checkpoint agrees with the new end');

    await fill(log, 5, 100);                                 // appends continue at the cut
    assert.equal(log.endOffset, at + 5 * RECORD);
    const again = decodeMessageSet(await readAll(log), { baseOffset: 0 });
    assert.deepEqual(again.messages.map((m) => Number(m.id)).slice(18), [19, 20, 101, 102, 103, 104, 105]);
    await store.close();

    const reopened = await MessageStore.open({ config: config(dir), logger: captureLogger().logger });
    const log2 = reopened.get('cut', 0)!;
    assert.equal(log2.endOffset, at + 5 * RECORD);
    assert.equal(reopened.recoveryReport.cuts.length, 0);
    await reopened.close();
  });

  it('refuses an offset that is not a record boundary or lies outside the log, and cuts nothing', async () => {
    const dir = await tempDir();
    const store = await MessageStore.open({ config: config(dir), logger: captureLogger().logger });
    const log = store.getOrCreate('refuse', 0);
    await fill(log, 10);
    for (const bad of [RECORD + 1, 11 * RECORD, -RECORD, 0.5]) {
      await assert.rejects(store.truncate('refuse', 0, bad), InvalidArgumentError, `offset ${bad}`);
    }
    await assert.rejects(store.truncate('refuse', 1, 0), InvalidArgumentError, 'no such partition');
    assert.equal(log.endOffset, 10 * RECORD);
    const same = await store.truncate('refuse', 0, 10 * RECORD);
    assert.equal(same.bytes, 0, 'cutting at the end removes nothing');
    await fill(log, 1, 10);
    assert.equal(log.endOffset, 11 * RECORD, 'appends are accepted again after a refusal');
    await store.close();
  });

  it('cuts a whole log down to its start, and a log in interval-flush mode', async () => {
    for (const threshold of [0, 1000]) {
      const dir = await tempDir();
      const store = await MessageStore.open({ config: config(dir, threshold), logger: captureLogger().logger });
      const log = store.getOrCreate('all', 0);
      await fill(log, 40);
      const report = await store.truncate('all', 0, 0);
      assert.equal(report.records, 40);
      assert.equal(log.endOffset, 0);
      assert.deepEqual(log.segmentStarts(), [0]);
      assert.equal((await stat(join(dir, 'all-0', '00000000000000000000.meta'))).size, 0);
      await fill(log, 2);
      await store.close();
      const reopened = await MessageStore.open({ config: config(dir, threshold), logger: captureLogger().logger });
      assert.equal(reopened.get('all', 0)!.endOffset, 2 * RECORD, `threshold ${threshold}`);
      await reopened.close();
    }
  });

  it('wakes readers waiting at the old end and lets them see the new end', async () => {
    const dir = await tempDir();
    const store = await MessageStore.open({ config: config(dir), logger: captureLogger().logger });
    const log = store.getOrCreate('poll', 0);
    await fill(log, 8);
    const seen: number[] = [];
    const off = log.onReadable(() => seen.push(log.readableEnd));
    await store.truncate('poll', 0, 3 * RECORD);
    off();
    assert.deepEqual(seen, [3 * RECORD]);
    assert.equal((await log.read(8 * RECORD - 1, 100)).length, 0, 'nothing readable beyond the new end');
    await store.close();
  });

  it('leaves a log recovery opens, holding a prefix of the old one and at least the kept bytes, when killed at any step', async () => {
    const seedDir = await tempDir();
    const at = 20 * RECORD;
    let steps = 0;
    for (let crashAt = 0; ; crashAt++) {
      const dir = join(seedDir, String(crashAt));
      const io = new DyingIO();
      const store = await MessageStore.open({ config: config(dir), logger: captureLogger().logger, fileIO: io });
      const log = store.getOrCreate('crash', 0);
      await fill(log, 60);
      const before = await readAll(log);
      io.crashAt = crashAt;
      io.startCounting();
      const done = await store.truncate('crash', 0, at).then(() => true, (e: unknown) => {
        assert.ok(io.dead, `only the kill fails the truncation: ${String(e)}`);
        assert.ok(e instanceof FsyncFailedError || (e as NodeJS.ErrnoException).code === 'EIO', String(e));
        return false;
      });
      io.release();
      const reopened = await MessageStore.open({ config: config(dir), logger: captureLogger().logger });
      const after = reopened.get('crash', 0)!;
      const content = await readAll(after);
      assert.ok(after.endOffset >= at, `kill before call ${crashAt}: end ${after.endOffset} keeps the bytes before the cut`);
      assert.deepEqual(content, before.subarray(0, after.endOffset), `kill before call ${crashAt}: a prefix of the old log`);
      assert.equal(reopened.recoveryReport.cuts.length, 0, 'recovery found whole records only');
      await reopened.close();
      if (done) {
        assert.equal(after.endOffset, at, 'a finished truncation is what recovery finds');
        steps = crashAt;
        break;
      }
      assert.ok(crashAt < 200, 'the truncation finishes within 200 file calls');
    }
    assert.ok(steps >= 8, `killed at each of the ${steps} file calls of a truncation`);
  });

  it('leaves the partition refusing writes once an I/O failure hit the files mid-cut', async () => {
    const dir = await tempDir();
    const io = new DyingIO();
    const { logger, entries } = captureLogger();
    const store = await MessageStore.open({ config: config(dir), logger, fileIO: io });
    const log = store.getOrCreate('fail', 0);
    await fill(log, 40);
    let unlinks = 0;
    const unlink = io.unlink.bind(io);
    io.unlink = async (p: string): Promise<void> => {
      if (++unlinks === 2) throw errnoError('EIO', 'disk gone');
      return unlink(p);
    };
    await assert.rejects(store.truncate('fail', 0, 5 * RECORD), FsyncFailedError);
    assert.throws(() => log.append(0, 1, 0, Buffer.alloc(1), crc32Masked(Buffer.alloc(1))), FsyncFailedError);
    assert.ok(entries.some((e) => e['level'] === 50 && e['msg'] === 'truncation failed: the partition refuses writes until a restart recovers it'));
    await store.close();
  });
});
