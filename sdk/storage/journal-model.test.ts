import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Journal, type JournalOptions } from './journal.js';
import { rng } from '../protocol/seeded-rng.js';


let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metaq-journal-model-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function snapshot(j: Journal): Promise<[number, string][]> {
  const out: [number, string][] = [];
  for await (const e of j.entries()) out.push([e.seq, e.record.toString('latin1')]);
  return out;
}

describe('storage/journal against a model', () => {
  it('matches a model after 100k seeded appends, updates and removes with restarts', async () => {
    const seed = process.env.SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.SEED);
    console.log(`journal model test seed=${seed} (replay with SEED=${seed})`);
    const random = rng(seed);
    const options: JournalOptions = { fsync: false, maxSegmentBytes: 64 * 1024, compactMinBytes: 256 * 1024 };
    const body = (): string => 'x'.repeat(Math.floor(random() * 300)) + String(Math.floor(random() * 1e9));
    const model = new Map<number, string>();
    let liveKeys: number[] = [];
    let j = await Journal.open(dir, options);
    let ops = 0;
    let lastSeq = -1;
    let reopenAt = 10_000;
    let compactions = 0;
    let deletedSegments = 0;
    while (ops < 100_000) {
      const batch = 1 + Math.floor(random() * 64);
      const appends: Promise<[number, string]>[] = [];
      const others: Promise<boolean>[] = [];
      for (let k = 0; k < batch; k++, ops++) {
        // Phases of growth and of shrinking, so segments fill, empty, and compact.
        const appendShare = Math.floor(ops / 5000) % 2 === 0 ? 0.7 : 0.3;
        const r = random();
        if (r < appendShare || liveKeys.length === 0) {
          const v = body();
          appends.push(j.append(Buffer.from(v, 'latin1')).then((seq) => [seq, v]));
          continue;
        }
        const i = Math.floor(random() * liveKeys.length);
        const seq = liveKeys[i]!;
        if (r < 0.92) {
          others.push(j.remove(seq));
          model.delete(seq);
          liveKeys[i] = liveKeys[liveKeys.length - 1]!;
          liveKeys.pop();
        } else {
          const v = body();
          others.push(j.update(seq, Buffer.from(v, 'latin1')));
          model.set(seq, v);
        }
      }
      for (const [seq, v] of await Promise.all(appends)) {
        assert.ok(seq > lastSeq, `seq ${seq} after ${lastSeq}`);
        lastSeq = seq;
        model.set(seq, v);
        liveKeys.push(seq);
      }
      assert.ok((await Promise.all(others)).every((ok) => ok), 'every remove and update found its live record');
      if (ops >= reopenAt) {
        reopenAt += 10_000 + Math.floor(random() * 10_000);
        await j.idle();
        compactions += j.stats.compactions;
        deletedSegments += j.stats.deletedSegments;
        await j.close();
        j = await Journal.open(dir, options);
        assert.equal(j.recovery.tornTails.length + j.recovery.damaged.length, 0);
        assert.deepEqual(await snapshot(j), [...model], `after reopen at op ${ops}`);
        liveKeys = [...model.keys()];
      }
    }
    assert.equal(j.size, model.size);
    assert.deepEqual(await snapshot(j), [...model]);
    for (let k = 0; k < 200 && liveKeys.length > 0; k++) {
      const seq = liveKeys[Math.floor(random() * liveKeys.length)]!;
      assert.equal((await j.read(seq))?.toString('latin1'), model.get(seq));
    }
    await j.idle();
    compactions += j.stats.compactions;
    deletedSegments += j.stats.deletedSegments;
    await j.close();
    const k = await Journal.open(dir, options);
    assert.deepEqual(await snapshot(k), [...model]);
    await k.close();
    let bytes = 0;
    const files = await readdir(dir);
    for (const f of files) bytes += (await stat(join(dir, f))).size;
    console.log(`live ${model.size}, ${files.length} files, ${bytes} bytes, ` +
      `${compactions} compactions, ${deletedSegments} segments deleted`);
    assert.ok(compactions > 0 && deletedSegments > 0, 'the workload exercised compaction and deletion');
  });
});
