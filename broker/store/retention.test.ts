import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, OffsetOutOfRangeError } from '../../sdk/errors.js';
import { crc32Masked } from '../../sdk/protocol/record.js';
import { MessageStore } from './message-store.js';
import { parseDeletePolicy } from './retention.js';
import { captureLogger, makeTempDir, makeTestConfig, stored } from './testing.js';

const temps: { remove: () => Promise<void> }[] = [];
after(async () => { for (const t of temps) await t.remove(); });

const HOUR = 3_600_000;

async function filledStore(policy: string, clockOffsetMs: number) {
  const t = await makeTempDir();
  temps.push(t);
  const config = makeTestConfig(t.path, {
    system: { maxSegmentSize: 1024 },
    topics: [{ name: 'ret', deletePolicy: parseDeletePolicy(policy) }],
  });
  let offset = 0;
  const store = await MessageStore.open({ config, logger: captureLogger().logger, now: () => Date.now() + offset });
  const log = store.getOrCreate('ret', 0);
  for (let i = 0; i < 40; i++) {
    const data = Buffer.alloc(44, i);
    log.append(0, i, 0, data, crc32Masked(data));
  }
  await stored(log);
  offset = clockOffsetMs;
  return { store, log, dir: join(t.path, 'ret-0') };
}

describe('store/retention', () => {
  it('parses delete and archive policies with s, m, h or no suffix', () => {
    assert.deepEqual(parseDeletePolicy('delete,168'), { kind: 'delete', maxAgeMs: 168 * HOUR, compress: false, source: 'delete,168' });
    assert.equal(parseDeletePolicy('delete,30s').maxAgeMs, 30_000);
    assert.equal(parseDeletePolicy('delete,5m').maxAgeMs, 300_000);
    assert.deepEqual(parseDeletePolicy('archive,2h,zip'), { kind: 'archive', maxAgeMs: 2 * HOUR, compress: true, source: 'archive,2h,zip' });
    assert.equal(parseDeletePolicy('archive,2,true').compress, true);
    assert.equal(parseDeletePolicy('archive,2,false').compress, false);
    for (const bad of ['', 'drop,1', 'delete', 'delete,x', 'delete,1d', 'delete,1,zip', 'archive,1,maybe', 'archive,1,zip,9']) {
      assert.throws(() => parseDeletePolicy(bad), ConfigError, bad);
    }
  });

  it('deletes expired sealed segments but never the active one, and moves the start offset', async () => {
    const { store, log, dir } = await filledStore('delete,1', 2 * HOUR);
    const report = await store.runRetention();
    assert.deepEqual(report.deleted.map((d) => d.start), [0, 1024]);
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.meta')), ['00000000000000002048.meta']);
    assert.equal(log.startOffset, 2048);
    await assert.rejects(log.read(100, 10), (e: unknown) => e instanceof OffsetOutOfRangeError && e.nearest === 2048);
    assert.equal(log.nearestOffset(0), 2048);
    await store.close();
  });

  it('keeps segments younger than the policy age', async () => {
    const { store } = await filledStore('delete,1', 0);
    const report = await store.runRetention();
    assert.equal(report.deleted.length, 0);
    await store.close();
  });

  it('archives to .meta.arc by renaming', async () => {
    const { store, dir } = await filledStore('archive,1', 2 * HOUR);
    const report = await store.runRetention();
    assert.equal(report.archived.length, 2);
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.meta')).sort(),
      ['00000000000000000000.meta.arc', '00000000000000001024.meta.arc', '00000000000000002048.meta']);
    assert.equal((await readFile(join(dir, '00000000000000000000.meta.arc'))).length, 1024);
    await store.close();
  });

  it('archives to a .meta.zip that a zip reader accepts and that holds the exact segment bytes', async () => {
    const { store, log, dir } = await filledStore('archive,1,zip', 2 * HOUR);
    const original = await log.read(0, 1024);
    const report = await store.runRetention();
    assert.equal(report.archived.length, 2);
    const zip = join(dir, '00000000000000000000.meta.zip');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.meta')).sort(),
      ['00000000000000000000.meta.zip', '00000000000000001024.meta.zip', '00000000000000002048.meta']);
    execFileSync('python3', ['-m', 'zipfile', '-t', zip]);
    execFileSync('unzip', ['-tq', zip]);
    const listed = execFileSync('python3', ['-m', 'zipfile', '-l', zip]).toString();
    assert.match(listed, /00000000000000000000\.meta\s+\S+ \S+\s+1024/);
    const content = execFileSync('python3', ['-c',
      'import sys,zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("00000000000000000000.meta"))', zip]);
    assert.ok(content.equals(original));
    await store.close();
  });
});
