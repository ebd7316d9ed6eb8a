/**
 * T4 (reliability.md): CRC mismatch detection. One random bit is flipped in a sealed segment, 100 times on fresh
 * copies: `verify` must report it with segment, position and offset; decoding the bytes read from the store must
 * raise CorruptRecordError (never return the data); with the read-side CRC check off (negative control) the
 * corrupt payload gets through. A flip after the flush checkpoint of an unclean store is cut at restart and logged.
 *
 * MetaQ's record CRC covers DATA only, so a flip in the msgId or flag bytes (12 of every record's 20 header bytes)
 * cannot be detected by any reader of this format; the flips are drawn from the covered bytes (length, checksum,
 * DATA) and the uncovered share is printed.
 *
 * Replay: METAQ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CorruptRecordError } from '../../sdk/errors.js';
import { crc32Masked, decodeMessageSet } from '../../sdk/protocol/record.js';
import type { BrokerConfig } from '../../broker/config/broker-config.js';
import { MessageStore } from '../../broker/store/message-store.js';
import { captureLogger, makeTempDir, makeTestConfig, rng, seedFrom, stored } from '../../broker/store/testing.js';
import { verifyDataDir } from '../../broker/store/verify.js';

const SEED = seedFrom('METAQ_SEED');
const DATA = 1024;
const RECORD = DATA + 20;
const PER_SEGMENT = 100;
const MAX_MESSAGE = 4096;
const SEALED = '00000000000000000000.meta';
const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

function configFor(path: string): BrokerConfig {
  return makeTestConfig(path, { system: { maxSegmentSize: PER_SEGMENT * RECORD, maxMessageSize: MAX_MESSAGE } });
}

async function fill(store: MessageStore, from: number, to: number): Promise<void> {
  const log = store.getOrCreate('flip', 0);
  for (let i = from; i < to; i++) {
    const data = Buffer.alloc(DATA, i & 0xff);
    data.writeUInt32BE(i, 0);
    log.append(0, i, 0, data, crc32Masked(data));
  }
  await stored(log);
}

describe('reliability/crc-flip (T4)', () => {
  let base: string;
  let files: Map<string, Buffer>;
  before(async () => {
    const t = await makeTempDir('metaq-flip-');
    temps.push(t);
    base = t.path;
    const store = await MessageStore.open({ config: configFor(join(base, 'pristine')), logger: captureLogger().logger });
    await fill(store, 0, 2 * PER_SEGMENT);
    await store.close();
    files = new Map();
    const dir = join(base, 'pristine', 'flip-0');
    for (const name of await readdir(dir)) files.set(name, await readFile(join(dir, name)));
  });

  it('detects 100 single-bit flips in a sealed segment on verify and on read; the control lets them through', async () => {
    const rand = rng(SEED);
    const work = join(base, 'work');
    const sealed = files.get(SEALED)!;
    const f = { flips: 0, verifyFound: 0, readThrew: 0, readCutTail: 0, silentlyDelivered: 0, controlDelivered: 0, dataFlips: 0 };
    for (let i = 0; i < 100; i++) {
      const record = Math.floor(rand() * PER_SEGMENT);
      const covered = Math.floor(rand() * (8 + DATA));
      const inRecord = covered < 8 ? covered : covered + 12;
      const pos = record * RECORD + inRecord;
      const bit = Math.floor(rand() * 8);
      const flipped = Buffer.from(sealed);
      flipped[pos]! ^= 1 << bit;
      await rm(work, { recursive: true, force: true });
      await mkdir(join(work, 'flip-0'), { recursive: true });
      for (const [name, buf] of files) await writeFile(join(work, 'flip-0', name), name === SEALED ? flipped : buf);
      f.flips++;

      const report = await verifyDataDir(work, { maxMessageSize: MAX_MESSAGE });
      const problem = report.problems[0];
      assert.ok(problem, `flip ${i} at ${pos} bit ${bit} found by verify`);
      assert.deepEqual({ seg: problem.segmentFile, position: problem.position, offset: problem.offset },
        { seg: SEALED, position: record * RECORD, offset: record * RECORD });
      f.verifyFound++;

      const store = await MessageStore.open({ config: configFor(work), logger: captureLogger().logger });
      const bytes = await store.get('flip', 0)!.read(0, PER_SEGMENT * RECORD);
      try {
        const set = decodeMessageSet(bytes, { baseOffset: 0, topic: 'flip', partition: 0, maxMessageSize: MAX_MESSAGE });
        // Only a length flip of the segment's last record can look like a cut tail; then it is not delivered either.
        assert.ok(set.truncatedTail && set.messages.every((m) => m.nextOffset <= record * RECORD), `flip ${i} at ${pos} bit ${bit} delivered`);
        f.readCutTail++;
      } catch (e) {
        assert.ok(e instanceof CorruptRecordError, String(e));
        assert.equal(e.offset, record * RECORD);
        f.readThrew++;
      }
      if (inRecord >= 20) {
        f.dataFlips++;
        const control = decodeMessageSet(bytes, { baseOffset: 0, maxMessageSize: MAX_MESSAGE, verifyCrc: false });
        const m = control.messages.find((x) => x.offset === record * RECORD);
        if (m !== undefined && !m.payload.equals(sealed.subarray(record * RECORD + 20, (record + 1) * RECORD))) f.controlDelivered++;
      }
      await store.close();
    }
    process.stdout.write(`# T4 flips=${f.flips} verify found=${f.verifyFound} read threw=${f.readThrew} read cut-tail=${f.readCutTail} ` +
      `silently delivered=${f.silentlyDelivered} control (CRC off) delivered corrupt=${f.controlDelivered}/${f.dataFlips} ` +
      `(uncovered header bytes: 12 of ${RECORD} per record)\n`);
    assert.equal(f.verifyFound, f.flips);
    assert.equal(f.readThrew + f.readCutTail, f.flips);
    assert.equal(f.controlDelivered, f.dataFlips, 'with the CRC check off every data flip gets through');
    assert.ok(f.dataFlips > 0);
  });

  it('cuts a flip after the flush checkpoint of an unclean store at restart and logs it', async () => {
    const live = join(base, 'live');
    const store = await MessageStore.open({ config: configFor(live), logger: captureLogger().logger });
    await fill(store, 0, 50);
    await store.checkpointAll();
    await fill(store, 50, 150);
    const copy = join(base, 'crashed');
    await cp(live, copy, { recursive: true });   // an image of a running store: no clean-shutdown marker
    await store.close();
    const segment = join(copy, 'flip-0', '00000000000000104400.meta');
    const bytes = await readFile(segment);
    const at = 20 * RECORD + 500;   // record 120, after the checkpoint at record 50
    bytes[at]! ^= 0x04;
    await writeFile(segment, bytes);
    const { logger, entries } = captureLogger('warn');
    const reopened = await MessageStore.open({ config: configFor(copy), logger });
    const log = reopened.get('flip', 0)!;
    assert.equal(log.endOffset, 120 * RECORD);
    const cuts = reopened.recoveryReport.cuts;
    assert.deepEqual(cuts.map((c) => ({ from: c.from, to: c.to, bytes: c.bytes, reason: c.reason })),
      [{ from: 120 * RECORD, to: 150 * RECORD, bytes: 30 * RECORD, reason: 'checksum mismatch' }]);
    assert.ok(entries.some((e) => e.msg === 'recovery cut bytes from the log' && e.from === 120 * RECORD && e.reason === 'checksum mismatch'));
    assert.equal(reopened.recoveryReport.scannedRecords, 70, 'the scan starts at the checkpoint (record 50)');
    process.stdout.write(`# T4 unclean restart: cut [${cuts[0]!.from}, ${cuts[0]!.to}) ${cuts[0]!.bytes} bytes, ` +
      `scanned ${reopened.recoveryReport.scannedRecords} records after the checkpoint\n`);
    await reopened.close();
  });
});
