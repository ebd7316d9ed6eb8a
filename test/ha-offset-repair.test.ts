/**
 * Consumer offsets repaired by message id after a failover (broker/ha/offset-repair.ts), against a real ZooKeeper
 * and a real message store: which nodes move, to what, which stay, and that a consumer's concurrent commit wins.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { repairConsumerOffsets } from '../broker/ha/offset-repair.js';
import { MessageStore } from '../broker/store/message-store.js';
import type { PartitionLog } from '../broker/store/partition-log.js';
import { captureLogger, makeTestConfig, stored } from '../broker/store/testing.js';
import { crc32Masked, RECORD_HEADER_SIZE } from '../sdk/protocol/record.js';
import { ZkPaths } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../sdk/protocol/zk/zk-session.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { startZooKeeper, type ZooKeeperServer } from './harness/zookeeper.js';

const BROKER = 3;
const RECORD = 50;                 // 30 DATA bytes + header
let zk: ZooKeeperServer;
let session: ZkSession;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  zk = await startZooKeeper();
  session = await ZkSession.open({ connect: zk.connectString, sessionTimeoutMs: 10_000, connectTimeoutMs: 10_000,
    logger: captureLogger('silent').logger });
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await session.close();
  await zk.stop();
});

/** A store whose partitions `topic-p` hold records with ids `ids[p]` (30 DATA bytes each, so record k ends at 50·(k+1)). */
async function storeWith(topic: string, ids: readonly (readonly number[])[]): Promise<MessageStore> {
  const dir = await tempDir('metaq-offset-repair-');
  const store = await MessageStore.open({ config: makeTestConfig(dir.path, { system: { numPartitions: ids.length, maxSegmentSize: 500 } }),
    logger: captureLogger('silent').logger });
  cleanups.push(async () => { await store.close(); await dir.remove(); });
  for (let p = 0; p < ids.length; p++) {
    const log: PartitionLog = store.getOrCreate(topic, p);
    for (const id of ids[p]!) {
      const data = Buffer.alloc(RECORD - RECORD_HEADER_SIZE, id & 0xff);
      log.append(0, id, 0, data, crc32Masked(data));
    }
    await stored(log);
  }
  return store;
}

async function setOffset(paths: ZkPaths, group: string, topic: string, partition: string, value: string): Promise<void> {
  const path = paths.offset(group, topic, partition);
  await session.ensurePath(path);
  await session.setData(path, value);
}

async function offsetOf(paths: ZkPaths, group: string, topic: string, partition: string): Promise<string | undefined> {
  return (await session.getData(paths.offset(group, topic, partition)))?.data.toString();
}

describe('ha/offset-repair', () => {
  it('moves each offset whose message is not the local one there to the end of the largest local id at most it', async () => {
    const paths = new ZkPaths(`/${uniqueName('repair')}`);
    const topic = uniqueName('orders');
    // Partition 0: ids 10..200 step 10 (20 records, end 1000). Partition 1: ids 1000..1040 (5 records, end 250).
    const store = await storeWith(topic, [Array.from({ length: 20 }, (_, i) => 10 * (i + 1)), [1000, 1010, 1020, 1030, 1040]]);
    const p0 = `${BROKER}-0`;
    const p1 = `${BROKER}-1`;
    const cases: [group: string, partition: string, before: string, after: string][] = [
      ['right', p0, '50-250', '50-250'],                 // id 50 is record 4, ending at 250: nothing to do
      ['tail-lost', p0, '230-1150', '200-1000'],          // the old master's tail: past our end
      ['moved', p0, '70-300', '70-350'],                  // id 70 is here but ends at 350
      ['between', p0, '75-355', '70-350'],                // no local id 75: the largest below it
      ['before-all', p0, '5-50', '-1-0'],                 // older than every local id: the log's start
      ['bare-inside', p0, '400', '400'],                  // old client, within the log: left alone
      ['bare-past', p0, '5000', '1000'],                  // old client, past the end: clamped
      ['unknown-past', p0, '-1-5000', '-1-1000'],
      ['right', p1, '1040-250', '1040-250'],
      ['tail-lost', p1, '1090-500', '1040-250'],
      ['other-broker', `${BROKER + 1}-0`, '230-1150', '230-1150'],   // not this broker's partition
    ];
    for (const [group, partition, value] of cases) await setOffset(paths, group, topic, partition, value);
    const { logger, entries } = captureLogger();
    const report = await repairConsumerOffsets({ session, paths, store, brokerId: BROKER, logger, parallelism: 2 });
    for (const [group, partition, , want] of cases) {
      assert.equal(await offsetOf(paths, group, topic, partition), want, `${group} ${partition}`);
    }
    const changed = cases.filter(([, , b, a]) => b !== a);
    assert.equal(report.groups, 9);
    assert.equal(report.checked, cases.length - 1);
    assert.equal(report.repaired, changed.length);
    assert.equal(report.skipped, 0);
    assert.deepEqual(new Set(report.repairs.map((r) => `${r.group} ${r.partition} ${r.before} ${r.after}`)),
      new Set(changed.map(([g, p, b, a]) => `${g} ${p.split('-')[1]} ${b} ${a}`)));
    const logged = entries.filter((e) => e['msg'] === 'consumer offset repaired');
    assert.equal(logged.length, changed.length);
    assert.ok(logged.every((e) => e['topic'] === topic && typeof e['group'] === 'string' && typeof e['old'] === 'string' &&
      typeof e['new'] === 'string' && typeof e['partition'] === 'number'));
    const summary = entries.find((e) => e['msg'] === 'consumer offsets repaired by message id');
    assert.ok(summary !== undefined && summary['level'] === 30 && summary['repaired'] === changed.length);

    const again = await repairConsumerOffsets({ session, paths, store, brokerId: BROKER, logger });
    assert.equal(again.repaired, 0, 'a second run finds nothing to repair');
  });

  it('keeps a consumer\'s commit made during the repair, and skips partitions this broker does not hold', async () => {
    const paths = new ZkPaths(`/${uniqueName('repair')}`);
    const topic = uniqueName('race');
    const store = await storeWith(topic, [[1, 2, 3, 4]]);
    await setOffset(paths, 'g', topic, `${BROKER}-0`, '9-900');
    await setOffset(paths, 'g', topic, `${BROKER}-7`, '9-900');
    const path = paths.offset('g', topic, `${BROKER}-0`);
    let raced = false;
    // The real session, except that the first read of the node is followed by a consumer's commit.
    const racing = new Proxy(session, {
      get(target, key) {
        if (key === 'getData') {
          return async (p: string) => {
            const node = await target.getData(p);
            if (p === path && !raced) { raced = true; await target.setData(p, '2-100'); }
            return node;
          };
        }
        const v: unknown = Reflect.get(target, key);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const { logger } = captureLogger('silent');
    const report = await repairConsumerOffsets({ session: racing, paths, store, brokerId: BROKER, logger });
    assert.ok(raced);
    assert.equal(await offsetOf(paths, 'g', topic, `${BROKER}-0`), '2-100', 'the consumer\'s commit is kept: it is right');
    assert.equal(await offsetOf(paths, 'g', topic, `${BROKER}-7`), '9-900');
    assert.deepEqual({ checked: report.checked, repaired: report.repaired, skipped: report.skipped }, { checked: 2, repaired: 0, skipped: 1 });
  });

  it('answers an empty report when no consumer group exists', async () => {
    const paths = new ZkPaths(`/${uniqueName('repair')}`);
    const store = await storeWith(uniqueName('none'), [[1]]);
    const report = await repairConsumerOffsets({ session, paths, store, brokerId: BROKER, logger: captureLogger('silent').logger });
    assert.deepEqual(report, { groups: 0, checked: 0, repaired: 0, skipped: 0, repairs: [] });
  });
});
