import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  DiskFullError, FsyncFailedError, OffsetOutOfRangeError, ShuttingDownError, StorageError, UnknownTopicError,
  WrongPartitionError,
} from '../../sdk/errors.js';
import { crc32Masked, decodeMessageSet, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import type { BrokerConfig } from '../config/broker-config.js';
import { Failpoints, FailpointNames } from './failpoints.js';
import type { FileIO, FsSpace, OpenMode } from './file-io.js';
import { NodeFileIO } from './file-io.js';
import { MessageStore } from './message-store.js';
import type { PartitionLog } from './partition-log.js';
import { decodeRecoveryPoints, RECOVERY_POINT_FILE } from './recovery-point-file.js';
import { captureLogger, makeTempDir, makeTestConfig, stored, waitFor } from './testing.js';

const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

async function tempDir(): Promise<string> {
  const t = await makeTempDir();
  temps.push(t);
  return t.path;
}

let nextId = 1;
function put(log: PartitionLog, payload: Buffer | string): number {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const id = nextId++;
  return log.append(0, id, 0, data, crc32Masked(data));
}

/** Delegates to the real file layer and records each call as `op:file`. */
class RecordingIO extends NodeFileIO implements FileIO {
  readonly calls: string[] = [];
  private readonly names = new Map<number, string>();
  space: FsSpace | undefined;
  private short(p: string): string { return p.slice(p.lastIndexOf('/') + 1); }
  override async open(path: string, mode: OpenMode): Promise<number> {
    const fd = await super.open(path, mode);
    this.names.set(fd, this.short(path));
    return fd;
  }
  override async writev(fd: number, b: readonly Uint8Array[], pos: number): Promise<number> {
    this.calls.push(`writev:${this.names.get(fd)}`);
    return super.writev(fd, b, pos);
  }
  override async fdatasync(fd: number): Promise<void> {
    this.calls.push(`fdatasync:${this.names.get(fd)}`);
    return super.fdatasync(fd);
  }
  override async statfs(path: string): Promise<FsSpace> {
    return this.space ?? super.statfs(path);
  }
  count(prefix: string): number { return this.calls.filter((c) => c.startsWith(prefix)).length; }
}

async function openStore(config: BrokerConfig, extra: { fileIO?: FileIO; failpoints?: Failpoints } = {}) {
  const { logger, entries } = captureLogger();
  const store = await MessageStore.open({ config, logger, ...extra });
  return { store, entries };
}

describe('store/message-store', () => {
  it('names segments by their 20-digit start offset and rolls at maxSegmentSize', async () => {
    const dir = await tempDir();
    const { store } = await openStore(makeTestConfig(dir, { system: { maxSegmentSize: 1024 } }));
    const log = store.getOrCreate('orders-eu', 0);
    for (let i = 0; i < 40; i++) put(log, Buffer.alloc(44, i));   // 64-byte records: 16 per segment
    await stored(log);
    assert.deepEqual(await readdir(join(dir, 'orders-eu-0')).then((n) => n.filter((x) => x.endsWith('.meta')).sort()),
      ['00000000000000000000.meta', '00000000000000001024.meta', '00000000000000002048.meta']);
    assert.equal((await stat(join(dir, 'orders-eu-0', '00000000000000001024.meta'))).size, 1024);
    assert.equal(log.endOffset, 40 * 64);
    await store.close();
    const again = await openStore(makeTestConfig(dir, { system: { maxSegmentSize: 1024 } }));
    const reopened = again.store.get('orders-eu', 0);
    assert.ok(reopened, 'a topic containing - is found by splitting the directory name at the last -');
    assert.equal(reopened.endOffset, 40 * 64);
    assert.equal(again.store.recoveryReport.cleanPartitions, 1);
    await again.store.close();
  });

  it('creates a partition lazily: no directory until the first flush, and a put needs no await', async () => {
    const dir = await tempDir();
    const { store } = await openStore(makeTestConfig(dir, { system: { numPartitions: 2 } }));
    const log = store.getOrCreate('lazy', 1);
    assert.deepEqual(await readdir(dir), [RECOVERY_POINT_FILE], 'only the (empty) checkpoint');
    assert.equal(put(log, 'first'), 0);
    assert.equal(put(log, 'second'), RECORD_HEADER_SIZE + 5);
    await stored(log);
    assert.deepEqual((await readdir(join(dir, 'lazy-1'))).filter((n) => n.endsWith('.meta')), ['00000000000000000000.meta']);
    assert.throws(() => store.getOrCreate('lazy', 2), WrongPartitionError);
    await store.close();
  });

  it('refuses topics that no section accepts, preferring exact names to wildcards', async () => {
    const dir = await tempDir();
    const cfg = makeTestConfig(dir, { topics: [{ name: 'app-*', numPartitions: 3 }, { name: 'app-x', numPartitions: 1 }] });
    const { store } = await openStore(cfg);
    assert.equal(store.topicConfig('app-x')?.numPartitions, 1);
    assert.equal(store.topicConfig('app-y')?.numPartitions, 3);
    assert.throws(() => store.getOrCreate('other', 0), UnknownTopicError);
    await store.close();
  });

  it('answers getNearestOffset as MetaQ does for segments of 1024 bytes', async () => {
    const dir = await tempDir();
    const { store } = await openStore(makeTestConfig(dir, { system: { maxSegmentSize: 1024 } }));
    const log = store.getOrCreate('nearest', 0);
    for (let i = 0; i < 64; i++) put(log, Buffer.alloc(44));
    await stored(log);
    const table: [number, number][] = [[-100, 0], [1023, 0], [1024, 1024], [2000, 1024], [3073, 3072], [4096, 4096], [16 * 1024, 4096]];
    for (const [offset, want] of table) assert.equal(log.nearestOffset(offset), want, `nearest(${offset})`);
    await store.close();
  });

  it('reads windows that may cut a record, never past a segment or readableEnd', async () => {
    const dir = await tempDir();
    const { store } = await openStore(makeTestConfig(dir, { system: { maxSegmentSize: 1024 } }));
    const log = store.getOrCreate('reads', 0);
    const offsets = Array.from({ length: 20 }, (_, i) => put(log, Buffer.alloc(44, i)));
    assert.equal((await log.read(0, 100)).length, 0, 'nothing readable before the fsync in group commit');
    await stored(log);
    const win = await log.read(offsets[1]!, 100);
    assert.equal(win.length, 100);
    const set = decodeMessageSet(win, { baseOffset: offsets[1]! });
    assert.equal(set.messages.length, 1);
    assert.ok(set.truncatedTail);
    assert.equal(set.messages[0]!.payload[0], 1);
    assert.equal((await log.read(960, 4096)).length, 64, 'a window stops at the segment end');
    assert.equal((await log.read(log.readableEnd, 4096)).length, 0);
    await assert.rejects(log.read(-1, 10), OffsetOutOfRangeError);
    await store.close();
  });

  it('answers a group commit only after the fdatasync that covers it', async () => {
    const dir = await tempDir();
    const io = new RecordingIO();
    const { store } = await openStore(makeTestConfig(dir), { fileIO: io });
    const log = store.getOrCreate('gc', 0);
    put(log, 'a');
    log.whenStored((err) => { assert.equal(err, null); io.calls.push('ack'); });
    put(log, 'b');
    log.whenStored(() => { io.calls.push('ack'); });
    await waitFor(() => io.calls.filter((c) => c === 'ack').length === 2, 'two acks');
    const seq = io.calls.filter((c) => c.endsWith('.meta') || c === 'ack');
    assert.deepEqual(seq, ['writev:00000000000000000000.meta', 'fdatasync:00000000000000000000.meta', 'ack', 'ack']);
    await store.close();
  });

  it('lets many concurrent appends share one writev and one fsync', async () => {
    const dir = await tempDir();
    const io = new RecordingIO();
    const { store } = await openStore(makeTestConfig(dir), { fileIO: io });
    const log = store.getOrCreate('shared', 0);
    const waits: Promise<void>[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 500; i++) { put(log, Buffer.alloc(100)); waits.push(stored(log)); }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waits);
    const fsyncs = io.count('fdatasync:0000');
    process.stdout.write(`# appends=10000 writev=${io.count('writev:0000')} fdatasync=${fsyncs}\n`);
    assert.ok(fsyncs <= 21, `10000 appends took ${fsyncs} fsyncs`);
    await store.close();
  });

  it('acks after the write in interval mode and fsyncs on the threshold and the interval timer', async () => {
    const dir = await tempDir();
    const io = new RecordingIO();
    const { store } = await openStore(makeTestConfig(dir, { system: { unflushThreshold: 1000, unflushInterval: 50 } }), { fileIO: io });
    store.start();
    const log = store.getOrCreate('interval', 0);
    put(log, 'x');
    await stored(log);
    assert.equal(io.count('fdatasync:0000'), 0, 'acked before any fsync');
    assert.equal(log.readableEnd, log.endOffset, 'readers see written data');
    assert.ok(log.durableEnd < log.endOffset);
    await waitFor(() => log.durableEnd === log.endOffset, 'the interval timer fsync', 2000);
    for (let i = 0; i < 1001; i++) put(log, 'y');
    await stored(log);
    await waitFor(() => log.durableEnd === log.endOffset, 'the threshold fsync');
    await store.close();
  });

  for (const fp of [FailpointNames.BEFORE_WRITE, FailpointNames.BEFORE_FSYNC]) {
    it(`fails the pending callbacks and refuses later appends after ${fp}, while reads keep working`, async () => {
      const dir = await tempDir();
      const failpoints = new Failpoints();
      const { store, entries } = await openStore(makeTestConfig(dir), { failpoints });
      const log = store.getOrCreate('fail', 0);
      put(log, 'kept');
      await stored(log);
      failpoints.enable(fp, { errno: 'EIO' });
      put(log, 'lost');
      await assert.rejects(stored(log), (e: unknown) => e instanceof FsyncFailedError && (e.cause as NodeJS.ErrnoException).code === 'EIO');
      failpoints.disable(fp);
      assert.throws(() => put(log, 'refused'), FsyncFailedError);
      await assert.rejects(stored(log), FsyncFailedError);
      const set = decodeMessageSet(await log.read(0, 4096), { baseOffset: 0 });
      assert.deepEqual(set.messages.map((m) => m.payload.toString()), ['kept']);
      assert.ok(entries.some((e) => e.level === 50 && e.partition === 0));
      await store.close();
      assert.ok(!(await readdir(join(dir, 'fail-0'))).includes('clean.shutdown'), 'no clean marker after a failure');
    });
  }

  it('turns ENOSPC from a write into DiskFullError and resumes when space is back', async () => {
    const dir = await tempDir();
    const failpoints = new Failpoints();
    const { store } = await openStore(makeTestConfig(dir), { failpoints });
    const log = store.getOrCreate('enospc', 0);
    put(log, 'one');
    await stored(log);
    failpoints.enable(FailpointNames.DISK_FULL, { errno: 'ENOSPC', times: 2 });
    const off = put(log, 'two');
    await assert.rejects(stored(log), DiskFullError);
    assert.throws(() => put(log, 'three'), DiskFullError);
    await store.checkDisk();
    assert.throws(() => put(log, 'three'), DiskFullError, 'the failpoint still fires once at the check');
    await store.checkDisk();
    assert.equal(put(log, 'four'), off, 'the refused record\'s offset is reused');
    await stored(log);
    const set = decodeMessageSet(await log.read(0, 4096), { baseOffset: 0 });
    assert.deepEqual(set.messages.map((m) => m.payload.toString()), ['one', 'four']);
    await store.close();
  });

  it('refuses writes above the disk watermark and accepts them again once space is freed', async () => {
    const dir = await tempDir();
    const io = new RecordingIO();
    const { store } = await openStore(makeTestConfig(dir, { system: { diskMaxUsedRatio: 0.9 } }), { fileIO: io });
    const log = store.getOrCreate('watermark', 0);
    io.space = { totalBytes: 1000, availableBytes: 50 };
    await store.checkDisk();
    assert.throws(() => put(log, 'x'), (e: unknown) => e instanceof DiskFullError && e.retriable);
    assert.equal((await log.read(0, 10)).length, 0, 'reads still work');
    io.space = { totalBytes: 1000, availableBytes: 500 };
    await store.checkDisk();
    put(log, 'x');
    await stored(log);
    await store.close();
  });

  it('refuses appends with ShuttingDownError during close and stores what was pending', async () => {
    const dir = await tempDir();
    const { store } = await openStore(makeTestConfig(dir));
    const log = store.getOrCreate('closing', 0);
    put(log, 'pending');
    const closing = store.close();
    assert.throws(() => put(log, 'late'), ShuttingDownError);
    await closing;
    assert.deepEqual((await readdir(join(dir, 'closing-0'))).sort(), ['00000000000000000000.meta', 'clean.shutdown']);
    assert.equal((await readFile(join(dir, 'closing-0', '00000000000000000000.meta'))).length, RECORD_HEADER_SIZE + 7);
    const points = decodeRecoveryPoints(await readFile(join(dir, RECOVERY_POINT_FILE)), 'test');
    assert.deepEqual([...points], [['closing-0', RECORD_HEADER_SIZE + 7]], 'close writes the checkpoint before the markers');
  });

  it('refuses to open a partition whose segments have a gap, naming the files', async () => {
    const dir = await tempDir();
    const { store } = await openStore(makeTestConfig(dir, { system: { maxSegmentSize: 1024 } }));
    const log = store.getOrCreate('gap', 0);
    for (let i = 0; i < 20; i++) put(log, Buffer.alloc(44));
    await store.close();
    await writeFile(join(dir, 'gap-0', '00000000000000004096.meta'), Buffer.alloc(64));
    await assert.rejects(openStore(makeTestConfig(dir, { system: { maxSegmentSize: 1024 } })),
      (e: unknown) => e instanceof StorageError && /00000000000000001024\.meta.*00000000000000004096\.meta/.test(e.message));
  });

  it('scans after the checkpoint when the clean-shutdown marker is missing, and reports it', async () => {
    const dir = await tempDir();
    const { store } = await openStore(makeTestConfig(dir));
    const log = store.getOrCreate('unclean', 0);
    for (let i = 0; i < 10; i++) put(log, `m${i}`);
    await store.close();
    const { rm } = await import('node:fs/promises');
    await rm(join(dir, 'unclean-0', 'clean.shutdown'));
    await rm(join(dir, RECOVERY_POINT_FILE));
    const again = await openStore(makeTestConfig(dir));
    assert.equal(again.store.recoveryReport.cleanPartitions, 0);
    assert.equal(again.store.recoveryReport.scannedRecords, 10);
    assert.deepEqual(again.store.recoveryReport.cuts, []);
    await again.store.close();
  });
});
