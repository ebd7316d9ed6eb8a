/**
 * T3 (reliability.md): torn or truncated segment recovery. 200 records of 1 KiB are written and the store closed;
 * then, on copies, the segment is cut at EVERY byte of the last two records, garbage tails are appended, and an
 * interrupted roll is simulated. Each time the reopened log must end at the last complete record, report exactly
 * the cut bytes (and log them), and place the next append right there.
 *
 * Replay: METAQ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32Masked, decodeMessageSet } from '../../sdk/protocol/record.js';
import type { BrokerConfig } from '../../broker/config/broker-config.js';
import { MessageStore } from '../../broker/store/message-store.js';
import { RECOVERY_POINT_FILE } from '../../broker/store/recovery-point-file.js';
import { captureLogger, makeTempDir, makeTestConfig, rng, seedFrom, stored } from '../../broker/store/testing.js';

const SEED = seedFrom('METAQ_SEED');
const RECORDS = 200;
const DATA = 1024;
const RECORD = DATA + 20;
const SEGMENT = '00000000000000000000.meta';
const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

let pristine: Map<string, Buffer>;
/** The recovery-point checkpoint written by the close of each pristine store, by data path. */
const pristineCheckpoints = new Map<string, Buffer>();
let pristineRolled: Map<string, Buffer>;
let recoveryMs: number[] = [];

async function writeRecords(config: BrokerConfig): Promise<Map<string, Buffer>> {
  const store = await MessageStore.open({ config, logger: captureLogger().logger });
  const log = store.getOrCreate('torn', 0);
  for (let i = 0; i < RECORDS; i++) {
    const data = Buffer.alloc(DATA, i & 0xff);
    log.append(0, i, 0, data, crc32Masked(data));
  }
  await stored(log);
  await store.close();
  const dir = join(config.system.dataPath, 'torn-0');
  const files = new Map<string, Buffer>();
  for (const name of await readdir(dir)) files.set(name, await readFile(join(dir, name)));
  const checkpoint = join(config.system.dataPath, RECOVERY_POINT_FILE);
  pristineCheckpoints.set(config.system.dataPath, await readFile(checkpoint));
  return files;
}

/** Lays out `files` (with `edit` applied) as a fresh partition directory, reopens it and checks the outcome. */
async function reopen(config: BrokerConfig, files: Map<string, Buffer>, edit: (f: Map<string, Buffer>) => void,
  expectEnd: number, expectCut: number): Promise<void> {
  const dir = join(config.system.dataPath, 'torn-0');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const copy = new Map(files);
  edit(copy);
  for (const [name, buf] of copy) await writeFile(join(dir, name), buf);
  // The previous case's close rewrote the data path's checkpoint for files that are gone now.
  await writeFile(join(config.system.dataPath, RECOVERY_POINT_FILE), pristineCheckpoints.get(config.system.dataPath)!);
  const { logger, entries } = captureLogger('warn');
  const t0 = performance.now();
  const store = await MessageStore.open({ config, logger });
  recoveryMs.push(performance.now() - t0);
  const log = store.get('torn', 0);
  assert.ok(log);
  const cutBytes = store.recoveryReport.cuts.reduce((s, c) => s + c.bytes, 0);
  assert.equal(log.endOffset, expectEnd, 'the log ends at the last complete record');
  assert.equal(cutBytes, expectCut, 'truncated bytes are exact');
  const cutLogs = entries.filter((e) => e.msg === 'recovery cut bytes from the log');
  assert.equal(cutLogs.length, store.recoveryReport.cuts.length, 'one warning per cut');
  for (const e of cutLogs) {
    for (const k of ['topic', 'partition', 'from', 'to', 'bytes', 'reason', 'segment']) assert.ok(k in e, `cut log has ${k}`);
  }
  const data = Buffer.alloc(10, 0xee);
  assert.equal(log.append(0, 999, 0, data, crc32Masked(data)), expectEnd, 'the next append lands right after');
  await stored(log);
  const tail = decodeMessageSet(await log.read(expectEnd, 100), { baseOffset: expectEnd });
  assert.ok(tail.messages[0]?.payload.equals(data));
  await store.close();
}

describe('reliability/torn-tail (T3)', () => {
  let config: BrokerConfig;
  let rolledConfig: BrokerConfig;
  before(async () => {
    const t = await makeTempDir('metaq-torn-');
    temps.push(t);
    config = makeTestConfig(join(t.path, 'one'));
    rolledConfig = makeTestConfig(join(t.path, 'rolled'), { system: { maxSegmentSize: 100 * RECORD } });
    pristine = await writeRecords(config);
    pristineRolled = await writeRecords(rolledConfig);
    recoveryMs = [];
  });

  it('truncates a torn tail at every byte of the last two records', async () => {
    const full = pristine.get(SEGMENT)!;
    assert.equal(full.length, RECORDS * RECORD);
    let cases = 0;
    for (let cut = (RECORDS - 2) * RECORD; cut < RECORDS * RECORD; cut++) {
      const boundary = Math.floor(cut / RECORD) * RECORD;
      await reopen(config, pristine, (f) => f.set(SEGMENT, full.subarray(0, cut)), boundary, cut - boundary);
      cases++;
    }
    process.stdout.write(`# T3 cut cases=${cases} failures=0 max recovery ms=${Math.max(...recoveryMs).toFixed(1)}\n`);
  });

  it('truncates 50 random garbage tails of 1 to 4096 bytes exactly', async () => {
    const rand = rng(SEED);
    const full = pristine.get(SEGMENT)!;
    for (let i = 0; i < 50; i++) {
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 4096) }, () => Math.floor(rand() * 256)));
      await reopen(config, pristine, (f) => f.set(SEGMENT, Buffer.concat([full, junk])), full.length, junk.length);
    }
    process.stdout.write(`# T3 garbage cases=50 failures=0\n`);
  });

  it('recovers from an interrupted roll: an empty or half-written new segment', async () => {
    const names = [...pristineRolled.keys()].filter((n) => n.endsWith('.meta')).sort();
    assert.deepEqual(names, ['00000000000000000000.meta', '00000000000000104400.meta']);
    const end = RECORDS * RECORD;
    const next = String(end).padStart(20, '0') + '.meta';
    await reopen(rolledConfig, pristineRolled, (f) => f.set(next, Buffer.alloc(0)), end, 0);
    const half = pristineRolled.get('00000000000000104400.meta')!.subarray(0, 500);
    await reopen(rolledConfig, pristineRolled, (f) => f.set(next, half), end, 500);
  });
});
