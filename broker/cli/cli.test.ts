import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePayload, encodeRecord } from '../../sdk/protocol/record.js';
import { configFromFlags } from './cli-config.js';
import { ProgressBar, formatBytes, formatDuration } from './progress.js';
import { runMetaq } from './run-cli.js';

/** A partition directory with `count` records; returns the segment path and the records' start positions. */
async function writeStore(dataDir: string, count: number): Promise<{ segment: string; positions: number[] }> {
  const dir = join(dataDir, 'orders-0');
  await mkdir(dir, { recursive: true });
  const records: Buffer[] = [];
  const positions: number[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const { data, flag } = encodePayload(Buffer.from(`message number ${i}`), i % 2 === 0 ? `attr-${i}` : null);
    const record = encodeRecord(BigInt(1000 + i), flag, data);
    positions.push(pos);
    pos += record.length;
    records.push(record);
  }
  const segment = join(dir, '00000000000000000000.meta');
  await writeFile(segment, Buffer.concat(records));
  return { segment, positions };
}

describe('cli/metaq', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'metaq-cli-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('prints usage for --help and exits 0', async () => {
    const r = await runMetaq(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of ['server', 'stats', 'topics', 'verify']) assert.match(r.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
    const start = await runMetaq(['server', 'start', '--help']);
    assert.equal(start.code, 0);
    for (const flag of ['--config', '--port', '--data-path', '--broker-id', '--set', '--zk', '--daemon', '--pid-file', '--log-file', '--log-level']) {
      assert.ok(start.stdout.includes(flag), `server start --help lacks ${flag}`);
    }
  });

  it('exits 2 with a message for an unknown command, a missing argument or a bad option value', async () => {
    const unknown = await runMetaq(['bogus']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'bogus'/);
    const missing = await runMetaq(['verify']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'dataDir'/);
    const level = await runMetaq(['server', 'start', '--log-level', 'loud']);
    assert.equal(level.code, 2);
    assert.match(level.stderr, /Allowed choices are fatal, error/);
  });

  it('turns server start --zk into cluster mode with that ZooKeeper', async () => {
    const config = await configFromFlags({ zk: '10.0.0.1:2181,10.0.0.2:2181/mq', set: ['zookeeper.zk.zkEnable=false'] });
    assert.equal(config.zookeeper.zkEnable, true, '--zk wins over --set');
    assert.equal(config.zookeeper.zkConnect, '10.0.0.1:2181,10.0.0.2:2181/mq');
    assert.equal((await configFromFlags({})).zookeeper.zkEnable, false, 'standalone without it');
  });

  it('exits 2 naming the key for a configuration error given on the command line', async () => {
    const r = await runMetaq(['server', 'start', '--data-path', join(dir, 'never'), '--set', 'system.serverPrt=1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^metaq: Invalid config key: serverPrt in \[system\] \(override system\.serverPrt\), did you mean 'serverPort'\?$/m);
    const port = await runMetaq(['server', 'start', '--data-path', join(dir, 'never'), '--port', '99999']);
    assert.equal(port.code, 2);
    assert.match(port.stderr, /serverPort in \[system\] \(override system\.serverPort\): "99999"; expected an integer in 0\.\.65535/);
    const file = await runMetaq(['server', 'status', '-c', join(dir, 'missing.ini')]);
    assert.equal(file.code, 2);
    assert.match(file.stderr, /Cannot read config file .*missing\.ini: ENOENT/);
  });

  it('verifies a good store and exits 0', async () => {
    const dataDir = join(dir, 'good');
    await writeStore(dataDir, 20);
    const r = await runMetaq(['verify', dataDir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 partitions, 1 segments, 20 records/);
    assert.match(r.stdout, /OK: no problems found/);
    const json = await runMetaq(['verify', dataDir, '--json']);
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout) as { records: number; problems: unknown[] };
    assert.deepEqual([report.records, report.problems.length], [20, 0]);
  });

  it('finds a flipped byte, names the segment and position, and exits 1', async () => {
    const dataDir = join(dir, 'flipped');
    const { segment, positions } = await writeStore(dataDir, 10);
    const bytes = await readFile(segment);
    const at = positions[4]! + 20 + 3;                 // inside the DATA of the fifth record
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(segment, bytes);
    const r = await runMetaq(['verify', dataDir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`PROBLEM orders-0/00000000000000000000\\.meta position ${positions[4]} \\(offset ${positions[4]}\\): .*checksum`));
    assert.match(r.stdout, /FAILED: 1 problem\(s\)/);
  });

  it('refuses to verify a path that is not a directory', async () => {
    const r = await runMetaq(['verify', join(dir, 'nothing-here')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /metaq: .*nothing-here is not a directory/);
  });

  it('exits 1 when stats cannot reach a broker', async () => {
    // Port 1 on loopback: nothing listens there and connecting needs no privilege.
    const r = await runMetaq(['stats', '--port', '1', '--data-path', join(dir, 'never')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /metaq: cannot reach 127\.0\.0\.1:1/);
  });
});

describe('cli/progress', () => {
  it('renders done/total, percentage, rate and ETA', () => {
    let t = 0;
    const stream = { isTTY: true, columns: 200, write: () => true } as unknown as NodeJS.WriteStream;
    const bar = new ProgressBar({ label: 'verify', unit: 'bytes', stream, now: () => t });
    t = 2000;
    assert.equal(bar.render(1024 * 1024, 4 * 1024 * 1024, 'orders-0', t),
      'verify [######------------------]  25.0% 1.0 MiB/4.0 MiB 512.0 KiB/s ETA 6s orders-0');
  });

  it('draws nothing when its stream is not a TTY', () => {
    const writes: string[] = [];
    const stream = { isTTY: false, write: (s: string) => { writes.push(s); return true; } } as unknown as NodeJS.WriteStream;
    const bar = new ProgressBar({ label: 'x', stream });
    bar.update(1, 2);
    bar.finish();
    assert.equal(bar.enabled, false);
    assert.deepEqual(writes, []);
  });

  it('redraws at most once per interval, and always at completion', () => {
    let t = 0;
    const writes: string[] = [];
    const stream = { isTTY: true, columns: 80, write: (s: string) => { writes.push(s); return true; } } as unknown as NodeJS.WriteStream;
    const bar = new ProgressBar({ label: 'x', stream, now: () => t, intervalMs: 100 });
    bar.update(1, 10);
    t = 50;
    bar.update(2, 10);
    t = 60;
    bar.update(10, 10);
    bar.finish();
    assert.equal(writes.length, 3);
    assert.ok(writes.every((w, i) => i === 2 ? w === '\n' : w.startsWith('\r')));
  });

  it('formats sizes and durations', () => {
    assert.deepEqual([formatBytes(512), formatBytes(1536), formatBytes(3 * 1024 ** 3)], ['512 B', '1.5 KiB', '3.0 GiB']);
    assert.deepEqual([formatDuration(42), formatDuration(185), formatDuration(3720)], ['42s', '3m05s', '1h02m']);
  });
});
