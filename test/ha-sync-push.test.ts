/**
 * The slave side of sync replication on a real ZooKeeper with in-process brokers: `sync` pushes (sent here as the
 * master would, with the master's records and offsets) are stored at the master's offsets, byte for byte, beside the
 * slave's pull loop.
 *
 * - `lone`: a slave of broker 7, which never has a master: no pull loop runs, only pushes change its logs.
 * - `master` (broker 0) and `slave` (its slave 1): pushes beside a live pull loop.
 * - broker 9 and its slave: pushes beyond the slave's end wait until the pull loop fills the gap.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Response } from '../sdk/protocol/commands.js';
import { encodeSync } from '../sdk/protocol/encode.js';
import { encodePayload, encodeRecord, RECORD_HEADER_SIZE } from '../sdk/protocol/record.js';
import type { PartitionLog } from '../broker/store/partition-log.js';
import { startCluster, type Cluster, type ClusterBroker } from './harness/cluster.js';
import { bodyText, RawClient } from './harness/raw-client.js';
import { uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { recordsOf, type LogRecord } from './harness/log-records.js';

/** One record of a master's log. */

/** Puts `n` messages on `partition` (every third with an attribute). */
async function produce(port: number, topic: string, partition: number, n: number): Promise<void> {
  const c = await RawClient.connect(port);
  try {
    for (let i = 0; i < n; i++) {
      const enc = encodePayload(Buffer.from(`${topic}-${partition}-${i}-${'y'.repeat(i % 40)}`), i % 3 === 0 ? `a${i}` : null);
      const r = await c.put(topic, partition, enc.data, { flag: enc.flag });
      assert.equal(r.code, 200, bodyText(r));
    }
  } finally {
    await c.close();
  }
}


type Form = 'offset' | 'metaq' | 'legacy';

/** Sends `sync` for `rec` (pipelined); resolves with the reply. */
function push(c: RawClient, topic: string, partition: number, rec: LogRecord,
  o: { form?: Form; checksum?: number; offset?: number } = {}): Promise<Response> {
  const opaque = c.nextOpaque();
  const form = o.form ?? 'offset';
  const frame = encodeSync({ topic, partition, flag: rec.flag, msgId: rec.msgId, checksum: o.checksum ?? rec.crc,
    offset: form === 'offset' ? o.offset ?? rec.offset : null, opaque, body: rec.data }, { legacy: form === 'legacy' });
  return c.request(frame, opaque, 30_000);
}

function code(r: Response): number {
  return r.type === 'result' ? r.code : -1;
}

/** Segment files of `topic` in a data dir: `<dir>/<file>` → bytes. */
async function segmentFiles(dataDir: string, topic: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const dir of (await readdir(dataDir)).filter((d) => d.startsWith(`${topic}-`)).sort()) {
    for (const f of (await readdir(join(dataDir, dir))).filter((x) => x.endsWith('.meta')).sort()) {
      out.set(`${dir}/${f}`, await readFile(join(dataDir, dir, f)));
    }
  }
  return out;
}

async function assertSameLogs(a: ClusterBroker, b: ClusterBroker, topic: string): Promise<void> {
  const x = await segmentFiles(a.dataDir, topic);
  const y = await segmentFiles(b.dataDir, topic);
  assert.deepEqual([...y.keys()], [...x.keys()], 'same segment files');
  for (const [name, bytes] of x) assert.ok(bytes.equals(y.get(name)!), `${name} byte-identical`);
  assert.ok(x.size > 0);
}

function log(b: ClusterBroker, topic: string, partition: number): PartitionLog | undefined {
  return b.broker!.store.get(topic, partition);
}

describe('sync replication, slave side: the master\'s pushes', () => {
  let cluster: Cluster;
  let master: ClusterBroker;
  let lone: ClusterBroker;
  let toLone: RawClient;
  const topic = uniqueName('push');

  before(async () => {
    // Small segments: pushes cross rolls exactly where the master rolled.
    cluster = await startCluster({ brokers: 1, numPartitions: 2, set: { 'system.maxSegmentSize': '2048' } });
    master = cluster.brokers[0]!;
    lone = await cluster.addBroker({ 'system.brokerId': '7', 'system.slaveId': '1', 'system.sendToSlaveTimeoutInMills': '1000' });
    toLone = await RawClient.connect(lone.port);
  });

  after(async () => {
    await toLone?.close();
    await cluster?.stop();
  });

  it('stores pushes at the local end byte-identically, answered with the master\'s msgId, partition and offset', async () => {
    await produce(master.port, topic, 0, 60);
    await produce(master.port, topic, 1, 20);
    for (const p of [0, 1]) {
      const recs = await recordsOf(log(master, topic, p)!);
      const replies = await Promise.all(recs.map((r) => push(toLone, topic, p, r)));
      replies.forEach((r, i) => {
        assert.equal(code(r), 200, bodyText(r));
        assert.equal(bodyText(r), `${recs[i]!.msgId} ${p} ${recs[i]!.offset}`);
      });
    }
    await assertSameLogs(master, lone, topic);
    assert.ok(log(master, topic, 0)!.segmentStarts().length > 1, 'the logs rolled');
    const stats = await toLone.stats('replication');
    assert.match(stats, /pushed_messages 80\r\n/);
    assert.match(await toLone.stats(), /cmd_put 80\r\n/);
  });

  it('answers 200 to a push below the end that matches and 500 to one that differs, writing nothing', async () => {
    const recs = await recordsOf(log(master, topic, 0)!);
    const end = log(lone, topic, 0)!.endOffset;
    const same = await push(toLone, topic, 0, recs[3]!);
    assert.equal(code(same), 200, bodyText(same));
    assert.equal(bodyText(same), `${recs[3]!.msgId} 0 ${recs[3]!.offset}`);
    const other = { ...recs[4]!, offset: recs[3]!.offset };
    const diverged = await push(toLone, topic, 0, other);
    assert.equal(code(diverged), 500);
    assert.match(bodyText(diverged), new RegExp(`${topic}-0 diverges from the master at offset ${recs[3]!.offset}: ` +
      `local record ${recs[3]!.msgId}, master's record ${recs[4]!.msgId}`));
    assert.equal(log(lone, topic, 0)!.endOffset, end);
    await assertSameLogs(master, lone, topic);
  });

  it('refuses a push whose checksum does not match its data and stores nothing', async () => {
    const end = log(lone, topic, 1)!.endOffset;
    const rec = { offset: end, msgId: 99n, flag: 0, crc: 5, data: Buffer.from('damaged on the way') };
    const r = await push(toLone, topic, 1, rec);
    assert.equal(code(r), 500);
    assert.match(bodyText(r), /Checksum failure/);
    assert.equal(log(lone, topic, 1)!.endOffset, end);
  });

  it('appends MetaQ\'s 7- and 8-token forms at the local end', async () => {
    const other = uniqueName('push-metaq');
    const l = (): PartitionLog => log(lone, other, 1)!;
    const a = { offset: -1, msgId: 1234n, flag: 0, crc: -1, data: Buffer.from('eight tokens') };
    const b = { offset: -1, msgId: 1235n, flag: 0, crc: -1, data: Buffer.from('seven tokens, no checksum') };
    const ra = await push(toLone, other, 1, a, { form: 'metaq' });
    assert.equal(bodyText(ra), '1234 1 0');
    const rb = await push(toLone, other, 1, b, { form: 'legacy' });
    assert.equal(bodyText(rb), `1235 1 ${RECORD_HEADER_SIZE + a.data.length}`);
    const want = Buffer.concat([encodeRecord(1234n, 0, a.data), encodeRecord(1235n, 0, b.data)]);
    assert.ok((await l().read(0, 4096)).equals(want));
  });

  it('fails a push beyond the end after a bounded wait when no pull loop can fill the gap, naming both offsets', async () => {
    const recs = await recordsOf(log(master, topic, 1)!);
    const end = log(lone, topic, 1)!.endOffset;
    const t0 = Date.now();
    const r = await push(toLone, topic, 1, { ...recs[0]!, offset: end + 1000 });
    assert.equal(code(r), 500);
    assert.match(bodyText(r), new RegExp(`local end ${end} has not reached the pushed offset ${end + 1000} within 800 ms`));
    assert.ok(Date.now() - t0 >= 700, 'it waited');
    assert.equal(log(lone, topic, 1)!.endOffset, end);
  });

  it('is refused by a master, which says why', async () => {
    const c = await RawClient.connect(master.port);
    try {
      const rec = (await recordsOf(log(master, topic, 0)!))[0]!;
      const r = await push(c, topic, 0, rec);
      assert.equal(code(r), 500);
      assert.match(bodyText(r), /sync is accepted only by a slave, and this broker is a master/);
    } finally {
      await c.close();
    }
  });

  it('keeps a push beyond the end waiting while the pull loop fills the gap, then stores it in order', async () => {
    const gapTopic = uniqueName('push-gap');
    const m9 = await cluster.addBroker({ 'system.brokerId': '9' });
    await produce(m9.port, gapTopic, 0, 30);
    const recs = await recordsOf(log(m9, gapTopic, 0)!);
    await m9.stop();
    // Its master is gone: nothing can fill the slave's log but the master coming back.
    const s9 = await cluster.addBroker({ 'system.brokerId': '9', 'system.slaveId': '1',
      'system.sendToSlaveTimeoutInMills': '60000' });
    const c = await RawClient.connect(s9.port);
    try {
      const late = recs.slice(20);
      const replies = late.map((r) => push(c, gapTopic, 0, r));
      await waitFor(async () => /cmd_put 10\r\n/.test(await c.stats()), { what: 'the slave to hold the 10 pushes' });
      assert.equal(c.received.filter((r) => r.type === 'result' && r.code !== 200 && r.code !== 500).length, 0);
      assert.equal(c.received.length, 1, 'only the stats reply: the pushes wait for the gap');
      await m9.start();
      const got = await Promise.all(replies);
      got.forEach((r, i) => assert.equal(bodyText(r), `${late[i]!.msgId} 0 ${late[i]!.offset}`));
      await waitFor(() => log(s9, gapTopic, 0)?.readableEnd === log(m9, gapTopic, 0)!.readableEnd, { what: 'the gap filled' });
      await assertSameLogs(m9, s9, gapTopic);
    } finally {
      await c.close();
    }
  });

  it('pauses the pull loop of a partition while pushes keep it current', async () => {
    const liveTopic = uniqueName('push-live');
    const slave = await cluster.addBroker({ 'system.brokerId': '0', 'system.slaveId': '1' });
    const toMaster = await RawClient.connect(master.port);
    const toSlave = await RawClient.connect(slave.port);
    const n = 150;
    try {
      for (let i = 0; i < n; i++) {
        const r = await toMaster.put(liveTopic, 0, `live-${i}`);
        assert.equal(r.code, 200);
        const offset = Number(bodyText(r).split(' ')[2]);
        const [rec] = await recordsOf(log(master, liveTopic, 0)!, offset);
        const pushed = await push(toSlave, liveTopic, 0, rec!);
        assert.equal(bodyText(pushed), bodyText(r), 'the slave answers as the master did');
      }
      await waitFor(() => log(slave, liveTopic, 0)?.readableEnd === log(master, liveTopic, 0)!.readableEnd, { what: 'slave current' });
      await assertSameLogs(master, slave, liveTopic);
      // Without the pause, each put answers a parked fetch of the slave (one get per record).
      const gets = Number(new RegExp(`${liveTopic} put_count \\d+ put_bytes \\d+ put_tps \\S+ get_count (\\d+)`)
        .exec(await toMaster.stats('realtime'))?.[1] ?? '0');
      assert.ok(gets < n / 5, `${gets} gets of the slave for ${n} pushed records`);
      assert.match(await toSlave.stats('replication'), new RegExp(`pushed_messages ${n}\\r\\n`));
    } finally {
      await toMaster.close();
      await toSlave.close();
      await slave.stop();
    }
  });
});
