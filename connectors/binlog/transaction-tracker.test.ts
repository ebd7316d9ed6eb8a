import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FilePositionStore, type BinlogPosition } from './position-store.js';
import { positionAfter, TransactionTracker, type TrackerStats } from './transaction-tracker.js';

describe('connectors/binlog transaction tracker', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'metaq-trx-tracker-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  function tracker(file: string): { t: TransactionTracker; stats: TrackerStats; saved: BinlogPosition[]; store: FilePositionStore } {
    const stats = { transactions: 0, checkpoints: 0, unsaved: 0 };
    const saved: BinlogPosition[] = [];
    const store = new FilePositionStore(join(dir, file));
    const t = new TransactionTracker(store, stats, (p) => saved.push(p), (e) => { throw e; });
    return { t, stats, saved, store };
  }

  it('saves a later transaction position only once every earlier transaction was acknowledged', async () => {
    const { t, stats, saved, store } = tracker('order.json');
    const a = t.open('a', null, 'binlog.000001', 4);
    t.sent(a);
    t.close(a, { file: 'binlog.000001', position: 100 });
    const b = t.open('b', null, 'binlog.000001', 100);
    t.sent(b);
    t.sent(b);
    t.close(b, { file: 'binlog.000001', position: 200 });
    t.acked(b);
    t.acked(b);
    await t.flush();
    assert.deepEqual(saved, [], 'b is acknowledged but a, before it, is not');
    assert.equal(stats.unsaved, 3);
    t.acked(a);
    await t.flush();
    assert.deepEqual(saved, [{ file: 'binlog.000001', position: 200 }], 'one save covers both');
    assert.deepEqual(await store.load(), { file: 'binlog.000001', position: 200 });
    assert.deepEqual(stats, { transactions: 2, checkpoints: 1, unsaved: 0 });
  });

  it('keeps an open transaction unsaved even when its messages were acknowledged', async () => {
    const { t, saved, stats } = tracker('open.json');
    const a = t.open('a', null, 'binlog.000001', 4);
    t.sent(a);
    t.acked(a);
    await t.flush();
    assert.deepEqual(saved, []);
    assert.equal(stats.unsaved, 1);
  });

  it('adds a DDL group GTID to the set zongji reported, on MariaDB and on MySQL', () => {
    const at = { gtidSet: '0-1-6', file: 'binlog.000002', position: 300 };
    assert.deepEqual(positionAfter(at, '0-1-7', true), { gtidSet: '0-1-7', file: 'binlog.000002', position: 300 });
    assert.deepEqual(positionAfter(at, undefined, true), at);
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    assert.equal(positionAfter({ gtidSet: `${uuid}:1-6`, file: undefined, position: undefined }, `${uuid}:7`, false).gtidSet,
      `${uuid}:1-7`);
    assert.deepEqual(positionAfter({ gtidSet: undefined, file: 'f', position: 4 }, '0-1-7', true), { file: 'f', position: 4 });
  });
});
