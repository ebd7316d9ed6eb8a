/**
 * T2 (reliability.md): simulated power loss with CrashFs. Producers append to two partitions and record every
 * acknowledged record; at a random moment the power goes, the store restarts on what a power loss may leave, and
 * every acknowledged record must read back byte-identical. Group commit must lose 0; the interval-flush negative
 * control must lose some, which shows the check can fail.
 *
 * Replay: METAQ_SEED=<seed>; size: METAQ_CRASH_POINTS (default 500).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { crc32Masked, decodeMessageSet } from '../../sdk/protocol/record.js';
import { MessageStore } from '../../broker/store/message-store.js';
import { captureLogger, makeTempDir, makeTestConfig, rng, seedFrom } from '../../broker/store/testing.js';
import { CrashFs } from './crash-fs.js';

const SEED = seedFrom('METAQ_SEED');
const CRASH_POINTS = Number(process.env.METAQ_CRASH_POINTS ?? 500);
const POINTS_PER_DIR = 10;
const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

interface Figures { crashPoints: number; acked: number; lost: number; truncatedBytes: number; cuts: number; tornKept: number }

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function scenario(groupCommit: boolean, points: number, seed: number): Promise<Figures> {
  const rand = rng(seed);
  const f: Figures = { crashPoints: 0, acked: 0, lost: 0, truncatedBytes: 0, cuts: 0, tornKept: 0 };
  const { logger } = captureLogger('error');
  for (let d = 0; d < Math.ceil(points / POINTS_PER_DIR); d++) {
    const tmp = await makeTempDir('metaq-powerloss-');
    temps.push(tmp);
    const config = makeTestConfig(tmp.path, {
      system: { numPartitions: 2, maxSegmentSize: 4096, unflushThreshold: groupCommit ? 0 : 1_000_000, unflushInterval: 1_000_000 },
    });
    // Expected content per partition: acked offset -> record data.
    const expected = [new Map<number, Buffer>(), new Map<number, Buffer>()];
    for (let c = 0; c < POINTS_PER_DIR && f.crashPoints < points; c++) {
      const fs = new CrashFs();
      const store = await MessageStore.open({ config, logger, fileIO: fs });
      f.truncatedBytes += store.recoveryReport.cuts.reduce((s, cut) => s + cut.bytes, 0);
      f.cuts += store.recoveryReport.cuts.length;
      await check(store, expected, f);
      let seq = 0;
      const turns = 1 + Math.floor(rand() * 12);
      for (let t = 0; t < turns; t++) {
        const n = 1 + Math.floor(rand() * 40);
        for (let i = 0; i < n; i++) {
          const p = rand() < 0.5 ? 0 : 1;
          const log = store.getOrCreate('power', p);
          const data = Buffer.alloc(4 + Math.floor(rand() * 300), (seq++ * 7 + c) & 0xff);
          data.writeUInt32BE((d << 20) | (c << 12) | (seq & 0xfff), 0);
          let offset: number;
          try { offset = log.append(d, seq, 0, data, crc32Masked(data)); } catch { continue; }
          log.whenStored((err) => {
            if (err !== null) return;
            expected[p]!.set(offset, data);
            f.acked++;
          });
        }
        // The recovery-point checkpoint may be mid-write when the power goes; it must never claim lost bytes.
        if (rand() < 0.3) void store.checkpointAll().catch(() => undefined);
        // Sometimes wait for the acks (so that many records are acked), sometimes only for a few loop turns.
        if (rand() < 0.4) await new Promise((r) => store.getOrCreate('power', rand() < 0.5 ? 0 : 1).whenStored(r));
        const waits = Math.floor(rand() * 4);
        for (let w = 0; w < waits; w++) await turn();
      }
      const report = await fs.powerLoss(Math.floor(rand() * 2 ** 31));
      f.tornKept += report.keptPendingBytes;
      f.crashPoints++;
      await store.close().catch(() => undefined);
    }
    const fs = new CrashFs();
    const store = await MessageStore.open({ config, logger, fileIO: fs });
    await check(store, expected, f);
    await store.close();
  }
  return f;
}

/** Every expected record must be at its offset, whole and identical; the log must decode without corruption. */
async function check(store: MessageStore, expected: Map<number, Buffer>[], f: Figures): Promise<void> {
  for (const [p, records] of expected.entries()) {
    const log = store.get('power', p);
    const found = new Map<number, Buffer>();
    if (log !== undefined) {
      for (let off = log.startOffset; off < log.readableEnd;) {
        const set = decodeMessageSet(await log.read(off, 64 * 1024), { baseOffset: off });
        assert.ok(set.bytesConsumed > 0, `partition ${p} has a record that does not fit at ${off}`);
        for (const m of set.messages) found.set(m.offset, m.payload);
        off += set.bytesConsumed;
      }
    }
    for (const [offset, data] of records) {
      if (found.get(offset)?.equals(data) !== true) { f.lost++; records.delete(offset); }
    }
  }
}

describe('reliability/power-loss (T2)', () => {
  it('loses no acknowledged message in group commit across many power losses', async () => {
    const t0 = Date.now();
    const f = await scenario(true, CRASH_POINTS, SEED);
    process.stdout.write(`# T2 group commit: crash points=${f.crashPoints} acked=${f.acked} lost=${f.lost} ` +
      `recovery cuts=${f.cuts} truncated bytes=${f.truncatedBytes} torn bytes kept=${f.tornKept} (${Date.now() - t0} ms)\n`);
    assert.ok(f.crashPoints >= CRASH_POINTS);
    assert.ok(f.acked > 0);
    assert.equal(f.lost, 0);
  });

  it('catches the loss of acknowledged messages in interval flush (negative control)', async () => {
    const f = await scenario(false, 50, SEED + 1);
    process.stdout.write(`# T2 interval-flush control: crash points=${f.crashPoints} acked=${f.acked} lost=${f.lost} ` +
      `truncated bytes=${f.truncatedBytes}\n`);
    assert.ok(f.lost > 0, 'the checker must see the unsynced window lost');
  });
});
