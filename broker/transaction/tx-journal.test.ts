import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { TxJournal } from './tx-journal.js';
import { decodeTxRecord, encodeTxRecord, FrameProblems, JOURNAL_MAGIC, type TxRecord } from './tx-records.js';
import { foldRecords } from './tx-replay.js';

const logger = pino({ level: 'silent' });
const put = (key: string, idLo: number, text: string): TxRecord => ({
  type: 'put', key, put: { topic: 't', partition: 1, flag: 0, idHi: 7, idLo, crc: 42, data: Buffer.from(text) },
});

describe('transaction/tx-journal', () => {
  let root: string;
  before(async () => { root = await mkdtemp(join(tmpdir(), 'metaq-txj-')); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  it('encodes and decodes every record type', () => {
    const records: TxRecord[] = [
      { type: 'begin', key: 'TX:s:1', timeoutSec: 30 },
      put('TX:s:1', 9, 'héllo'),
      { type: 'prepare', key: 'XID:1:ab:cd:q' },
      { type: 'commit', key: 'TX:s:1', wasPrepared: true, parts: [{ topic: 'tö', partition: 3, from: 2 ** 40 + 5 }] },
      { type: 'commit-done', key: 'TX:s:1' },
      { type: 'rollback', key: 'TX:s:2' },
      { type: 'forget', key: 'XID:1:ab:cd:q' },
    ];
    for (const r of records) {
      const b = encodeTxRecord(r);
      const d = decodeTxRecord(b, 0, 1 << 20);
      assert.ok(d.ok);
      assert.equal(d.size, b.length);
      assert.deepEqual(d.record, r);
    }
  });

  it('refuses a record with a flipped bit or cut short', () => {
    const b = encodeTxRecord(put('TX:s:1', 1, 'payload'));
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i]! ^= 0x10;
      assert.equal(decodeTxRecord(c, 0, 1 << 20).ok, false, `bit flip at byte ${i} not detected`);
    }
    for (let n = 0; n < b.length; n++) {
      const d = decodeTxRecord(b.subarray(0, n), 0, 1 << 20);
      assert.ok(!d.ok && d.problem === FrameProblems.INCOMPLETE, `cut at ${n}`);
    }
  });

  it('replays what was appended, cutting a torn tail of the newest file', async () => {
    const dir = join(root, 'torn');
    const { journal } = await TxJournal.open({ dir, logger, maxRecordBytes: 1 << 20 });
    await journal.append({ type: 'begin', key: 'TX:a:1', timeoutSec: 0 }, false);
    await journal.append(put('TX:a:1', 1, 'one'), true);
    await journal.close();
    const [file] = await readdir(dir);
    await appendFile(join(dir, file!), encodeTxRecord(put('TX:a:1', 2, 'torn')).subarray(0, 11));
    const { journal: j2, replay } = await TxJournal.open({ dir, logger, maxRecordBytes: 1 << 20 });
    assert.deepEqual(replay.records.map((r) => r.type), ['begin', 'put']);
    assert.equal(replay.cut?.problem, FrameProblems.INCOMPLETE);
    await j2.close();
  });

  it('refuses to start when a file other than the newest is damaged', async () => {
    const dir = join(root, 'damaged');
    const { journal } = await TxJournal.open({ dir, logger, maxRecordBytes: 1 << 20 });
    await journal.append(put('TX:a:1', 1, 'one'), true);
    await journal.close();
    const [file] = await readdir(dir);
    await appendFile(join(dir, file!), Buffer.from('garbage!garbage!'));
    await writeFile(join(dir, `${'9'.padStart(20, '0')}.txlog`), JOURNAL_MAGIC);
    await assert.rejects(TxJournal.open({ dir, logger, maxRecordBytes: 1 << 20 }), /is damaged at byte .* not the newest file/);
  });

  it('checkpoints into a new file holding only the live transactions and deletes the older ones', async () => {
    const dir = join(root, 'checkpoint');
    const { journal } = await TxJournal.open({ dir, logger, maxRecordBytes: 1 << 20, maxFileSize: 4096 });
    const live: TxRecord[] = [{ type: 'begin', key: 'TX:live:1', timeoutSec: 0 }, put('TX:live:1', 1, 'kept')];
    journal.live = () => live;
    for (let i = 0; i < 200; i++) {
      await journal.append({ type: 'begin', key: `TX:dead:${i}`, timeoutSec: 0 }, false);
      await journal.append(put(`TX:dead:${i}`, 100 + i, 'x'.repeat(100)), false);
      await journal.append({ type: 'rollback', key: `TX:dead:${i}` }, false);
    }
    // The size limit rolled the file several times; each roll removed the older files.
    assert.equal(journal.fileCount, 1);
    await journal.close();
    const { journal: j2, replay } = await TxJournal.open({ dir, logger, maxRecordBytes: 1 << 20 });
    const unfinished = foldRecords(replay.records);
    assert.deepEqual(unfinished.map((t) => t.key), ['TX:live:1']);
    assert.deepEqual(unfinished[0]!.puts.map((p) => p.data.toString()), ['kept']);
    await j2.close();
  });

  it('merges records repeated by an interrupted checkpoint, puts once each and in id order', () => {
    const folded = foldRecords([
      { type: 'begin', key: 'TX:a:1', timeoutSec: 5 }, put('TX:a:1', 2, 'second'),
      // What a checkpoint carried into the new file before the crash: the whole transaction again.
      { type: 'begin', key: 'TX:a:1', timeoutSec: 5 }, put('TX:a:1', 1, 'first'), put('TX:a:1', 2, 'second'),
      { type: 'prepare', key: 'TX:a:1' },
      { type: 'begin', key: 'TX:b:1', timeoutSec: 0 }, { type: 'commit-done', key: 'TX:b:1' },
    ]);
    assert.equal(folded.length, 1);
    assert.deepEqual(folded[0]!.puts.map((p) => p.data.toString()), ['first', 'second']);
    assert.equal(folded[0]!.prepared, true);
  });
});
