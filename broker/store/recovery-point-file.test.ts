import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { StorageError } from '../../sdk/errors.js';
import { crc32Masked, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import { FailpointNames, Failpoints } from './failpoints.js';
import type { FileIO, OpenMode } from './file-io.js';
import { NodeFileIO } from './file-io.js';
import { MessageStore } from './message-store.js';
import type { PartitionLog } from './partition-log.js';
import type { CheckpointedPartition } from './recovery-point-file.js';
import {
  decodeRecoveryPoints, encodeRecoveryPoints, readRecoveryPoints, RECOVERY_POINT_FILE, RecoveryPointFile,
} from './recovery-point-file.js';
import { captureLogger, makeTempDir, makeTestConfig, stored } from './testing.js';

const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

async function tempDir(): Promise<string> {
  const t = await makeTempDir('metaq-rp-');
  temps.push(t);
  return t.path;
}

function put(log: PartitionLog, text: string): void {
  const data = Buffer.from(text);
  log.append(0, 1, 0, data, crc32Masked(data));
}

async function fill(log: PartitionLog, n: number): Promise<void> {
  for (let i = 0; i < n; i++) put(log, `record-${i}`);   // 8 or 9 bytes of data
  await stored(log);
}

function points(buf: Buffer): Record<string, number> {
  return Object.fromEntries(decodeRecoveryPoints(buf, 'test'));
}

/** Counts the temp files of checkpoint writes open at once (real I/O underneath). */
class OverlapIO extends NodeFileIO implements FileIO {
  open_ = 0;
  maxOpen = 0;
  writes = 0;
  override async open(path: string, mode: OpenMode): Promise<number> {
    if (path.endsWith(`${RECOVERY_POINT_FILE}.tmp`)) { this.writes++; this.maxOpen = Math.max(this.maxOpen, ++this.open_); }
    return super.open(path, mode);
  }
  override async rename(from: string, to: string): Promise<void> {
    await super.rename(from, to);
    if (from.endsWith(`${RECOVERY_POINT_FILE}.tmp`)) this.open_--;
  }
}

describe('store/recovery-point-file', () => {
  it('round-trips entries, including topics that contain spaces and dashes', () => {
    const entries: [string, number][] = [['orders-eu-0', 0], ['a b-12', 2 ** 40 + 3], ['t-999', 1044]];
    const buf = encodeRecoveryPoints(entries);
    assert.match(buf.toString(), /^MQRP 1\n3\norders-eu-0 0\n/);
    assert.deepEqual([...decodeRecoveryPoints(buf, 'x')], entries);
    assert.deepEqual([...decodeRecoveryPoints(encodeRecoveryPoints([]), 'x')], []);
  });

  it('refuses every malformed file with a StorageError saying what is wrong', () => {
    const good = encodeRecoveryPoints([['t-0', 10], ['t-1', 20]]).toString('latin1');
    // A correct CRC line, so that the table reaches the checks after the CRC.
    const withCrc = (body: string): string =>
      `${body}crc32 ${(crc32(Buffer.from(body, 'latin1')) >>> 0).toString(16).padStart(8, '0')}\n`;
    const table: [string, string, RegExp][] = [
      ['empty', '', /newline/],
      ['cut before the end', good.slice(0, -3), /newline/],
      ['no crc line', 'MQRP 1\n0\n', /crc32 line/],
      ['one flipped digit', good.replace('t-0 10', 't-0 11'), /CRC mismatch/],
      ['wrong magic', withCrc('MQCK 1\n0\n'), /header/],
      ['unknown version', withCrc('MQRP 2\n0\n'), /header/],
      ['bad count', withCrc('MQRP 1\nx\n'), /entry count/],
      ['fewer entries than counted', withCrc('MQRP 1\n2\nt-0 1\n'), /1 entry lines, header says 2/],
      ['entry without offset', withCrc('MQRP 1\n1\nt-0\n'), /bad entry line 3/],
      ['negative offset', withCrc('MQRP 1\n1\nt-0 -1\n'), /bad entry line 3/],
      ['offset beyond 2^53', withCrc('MQRP 1\n1\nt-0 9999999999999999\n'), /bad entry line 3/],
      ['duplicate partition', withCrc('MQRP 1\n2\nt-0 1\nt-0 2\n'), /listed twice/],
    ];
    for (const [what, text, why] of table) {
      assert.throws(() => decodeRecoveryPoints(Buffer.from(text, 'latin1'), '/d/recovery-point.checkpoint'),
        (e: unknown) => e instanceof StorageError && why.test(e.message) && e.message.includes('/d/recovery-point.checkpoint'),
        what);
    }
  });

  it('never runs two writes at once and skips a write when no durable offset moved', async () => {
    const dir = await tempDir();
    const io = new OverlapIO();
    const file = new RecoveryPointFile({ io, logger: captureLogger().logger, dataPaths: [dir] });
    const p: { -readonly [K in keyof CheckpointedPartition]: CheckpointedPartition[K] } =
      { topic: 't', partition: 0, durableEnd: 1, config: { dataPath: dir } };
    const first = file.write([p]);
    assert.ok(file.writing);
    p.durableEnd = 2;
    const second = file.write([p]);
    const third = file.write([p]);
    await Promise.all([first, second, third]);
    assert.equal(io.maxOpen, 1, 'writes overlapped');
    assert.equal(io.writes, 2, 'the third call found nothing changed');
    assert.deepEqual(await readRecoveryPoints(io, dir), new Map([['t-0', 2]]));
    await file.write([p]);
    assert.equal(io.writes, 2);
  });

  it('lists every partition of each data path with its durable end after checkpointAll()', async () => {
    const dir = await tempDir();
    const other = join(dir, 'other');
    const config = makeTestConfig(dir, { system: { numPartitions: 3 }, topics: [{ name: 'far', dataPath: other }, { name: '*' }] });
    const store = await MessageStore.open({ config, logger: captureLogger().logger });
    const logs = [store.getOrCreate('a', 0), store.getOrCreate('a', 2), store.getOrCreate('b-x', 1), store.getOrCreate('far', 0)];
    for (const [i, log] of logs.entries()) await fill(log, 3 + i);
    await store.checkpointAll();
    assert.deepEqual(points(await readFile(join(dir, RECOVERY_POINT_FILE))),
      { 'a-0': logs[0]!.durableEnd, 'a-2': logs[1]!.durableEnd, 'b-x-1': logs[2]!.durableEnd });
    assert.deepEqual(points(await readFile(join(other, RECOVERY_POINT_FILE))), { 'far-0': logs[3]!.durableEnd });
    assert.ok(logs.every((l) => l.durableEnd > 0));
    assert.ok(!(await readdir(join(dir, 'a-0'))).some((n) => n.includes('checkpoint')), 'no per-partition checkpoint');
    await store.close();
  });

  it('starts the scan after an unclean stop at the checkpointed offset; a partition it does not list is scanned whole', async () => {
    const base = await tempDir();
    const dir = join(base, 'live');
    const store = await MessageStore.open({ config: makeTestConfig(dir, { system: { numPartitions: 2 } }), logger: captureLogger().logger });
    const log = store.getOrCreate('u', 0);
    await fill(log, 10);
    await store.checkpointAll();
    const checkpointed = log.durableEnd;
    await fill(log, 4);
    await fill(store.getOrCreate('u', 1), 6);
    const copy = join(base, 'copy');
    await cp(dir, copy, { recursive: true });   // a running store: no markers
    await store.close();
    const reopened = await MessageStore.open({ config: makeTestConfig(copy, { system: { numPartitions: 2 } }), logger: captureLogger().logger });
    const r = reopened.recoveryReport;
    assert.equal(r.cleanPartitions, 0);
    assert.equal(r.scannedRecords, 4 + 6);
    assert.equal(r.scannedBytes, (log.durableEnd - checkpointed) + reopened.get('u', 1)!.endOffset);
    assert.equal(reopened.get('u', 0)!.endOffset, log.durableEnd);
    await reopened.close();
  });

  it('scans whole logs and logs it when the checkpoint file is damaged', async () => {
    const base = await tempDir();
    const dir = join(base, 'live');
    const store = await MessageStore.open({ config: makeTestConfig(dir), logger: captureLogger().logger });
    const log = store.getOrCreate('d', 0);
    await fill(log, 12);
    await store.checkpointAll();
    const copy = join(base, 'copy');
    await cp(dir, copy, { recursive: true });
    await store.close();
    const file = join(copy, RECOVERY_POINT_FILE);
    const bytes = await readFile(file);
    bytes[bytes.indexOf('d-0 ') + 4]! ^= 0x01;   // one digit of the offset
    await writeFile(file, bytes);
    const { logger, entries } = captureLogger('warn');
    const reopened = await MessageStore.open({ config: makeTestConfig(copy), logger });
    assert.equal(reopened.recoveryReport.scannedRecords, 12, 'scanned from the start');
    assert.ok(entries.some((e) => e.level === 40 && String(e.msg).includes('recovery-point checkpoint ignored') &&
      e.dataPath === copy && String((e.err as { message?: string } | undefined)?.message).includes('CRC mismatch')));
    await reopened.close();
  });

  it('drops at open the entry of a partition directory that is gone, before any append', async () => {
    const dir = await tempDir();
    const config = makeTestConfig(dir, { system: { numPartitions: 2 } });
    const store = await MessageStore.open({ config, logger: captureLogger().logger });
    await fill(store.getOrCreate('gone', 0), 2);
    await fill(store.getOrCreate('gone', 1), 3);
    await store.close();
    assert.deepEqual(Object.keys(points(await readFile(join(dir, RECOVERY_POINT_FILE)))), ['gone-0', 'gone-1']);
    await rm(join(dir, 'gone-1'), { recursive: true });
    const reopened = await MessageStore.open({ config, logger: captureLogger().logger });
    assert.deepEqual(points(await readFile(join(dir, RECOVERY_POINT_FILE))), { 'gone-0': reopened.get('gone', 0)!.durableEnd });
    await reopened.close();
  });

  it('writes the checkpoint from the once-a-second job once start() has run', async () => {
    const dir = await tempDir();
    const store = await MessageStore.open({ config: makeTestConfig(dir), logger: captureLogger().logger });
    store.start();
    const log = store.getOrCreate('tick', 0);
    await fill(log, 5);
    const want = log.durableEnd;
    assert.equal(want, 5 * RECORD_HEADER_SIZE + 5 * 8);
    const current = async (): Promise<number | undefined> => (await readRecoveryPoints(new NodeFileIO(), dir))?.get('tick-0');
    let seen: number | undefined;
    const deadline = Date.now() + 5000;
    while (seen !== want && Date.now() < deadline) {
      seen = await current();
      if (seen !== want) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(seen, want);
    await store.close();
  });

  it('keeps the previous checkpoint when a write fails before the rename, logs it, and writes again next time', async () => {
    const dir = await tempDir();
    const failpoints = new Failpoints();
    const { logger, entries } = captureLogger('warn');
    const store = await MessageStore.open({ config: makeTestConfig(dir), logger, failpoints });
    const log = store.getOrCreate('fp', 0);
    await fill(log, 2);
    await store.checkpointAll();
    const before = log.durableEnd;
    await fill(log, 3);
    failpoints.enable(FailpointNames.BEFORE_RENAME, { errno: 'EIO', times: 1 });
    await assert.rejects(store.checkpointAll(), /EIO/);
    assert.deepEqual(points(await readFile(join(dir, RECOVERY_POINT_FILE))), { 'fp-0': before });
    assert.ok(entries.some((e) => e.msg === 'recovery-point checkpoint not written'));
    await store.checkpointAll();
    assert.deepEqual(points(await readFile(join(dir, RECOVERY_POINT_FILE))), { 'fp-0': log.durableEnd });
    assert.equal(failpoints.fired.get(FailpointNames.BEFORE_RENAME), 1);
    await store.close();
  });
});

