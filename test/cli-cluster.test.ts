/**
 * The cluster admin commands (`metaq brokers|topics --zk|groups|offsets`) against a real ZooKeeper and two real
 * brokers that register themselves. The consumer group is played by a ZooKeeper session of the test writing MetaQ's
 * layout (ids, owner and offset nodes), so the owner's fenced commit can be replayed exactly.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { runMetaq } from '../broker/cli/run-cli.js';
import { brokersReport, renderBrokers } from '../broker/cli/cluster/brokers-command.js';
import { openCluster, zkTarget, type CliIo, type ClusterContext } from '../broker/cli/cluster/cluster-context.js';
import { groupReport, groupsCommand, groupsSummary } from '../broker/cli/cluster/groups-command.js';
import { offsetsCommand, resetOffsets, showOffsets, type OffsetsFlags, type ResetTarget } from '../broker/cli/cluster/offsets-command.js';
import { topicsReport } from '../broker/cli/cluster/topics-command.js';
import { CoordinationError, InvalidArgumentError } from '../sdk/errors.js';
import { ZkPaths } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession, zkCodeOf } from '../sdk/protocol/zk/zk-session.js';
import { startCluster, type Cluster } from './harness/cluster.js';
import { RawClient } from './harness/raw-client.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { freePort } from './harness/free-port.js';

/** Each record is a 20-byte header plus its DATA: `m0`..`m9` are 22 bytes. */
const RECORD = 22;

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (t: string) => { io.stdout += t; },
    err: (t: string) => { io.stderr += t; },
  };
  return io;
}

describe('cli/cluster', () => {
  const topic = uniqueName('orders');
  const group = uniqueName('billing');
  const member = `${group}_consumer-1`;
  let cluster: Cluster;
  let consumer: ZkSession;   // plays the group's one live member
  let ctx: ClusterContext;
  let paths: ZkPaths;
  let dir: { path: string; remove(): Promise<void> };
  let deadPort = 0;

  before(async () => {
    dir = await tempDir('metaq-cli-cluster-');
    cluster = await startCluster({ brokers: 2, numPartitions: 2, set: { [`topic=${topic}.numPartitions`]: '2' } });
    paths = new ZkPaths(cluster.zkRoot);
    consumer = await ZkSession.open({ connect: cluster.zkConnect, sessionTimeoutMs: 4000, connectTimeoutMs: 10_000, logger: pino({ level: 'silent' }) });
    await waitFor(async () => (await consumer.getChildren(paths.topicBrokers('topics-sub', topic)))?.length === 2,
      { what: 'both brokers to register the topic' });
    // broker 0 partition 0: 4 records (end 88); broker 1 partition 1: 2 records (end 44).
    for (const [b, partition, n] of [[0, 0, 4], [1, 1, 2]] as const) {
      const raw = await RawClient.connect(cluster.brokers[b]!.port);
      for (let i = 0; i < n; i++) assert.equal((await raw.put(topic, partition, `m${i}`)).code, 200);
      await raw.close();
    }
    // A registered slave that does not answer.
    deadPort = await freePort();
    await consumer.createEphemeral(paths.brokerSlave(0, 1), `meta://127.0.0.1:${deadPort}`);
    // The group: one member owning 0-0 with a committed offset; 1-1 committed by an earlier member.
    await consumer.ensurePath(paths.consumerIds(group));
    await consumer.createEphemeral(paths.consumerId(group, member), topic);
    await consumer.ensurePath(paths.owners(group, topic));
    await consumer.createEphemeral(paths.owner(group, topic, '0-0'), member);
    await consumer.ensurePath(paths.offsets(group, topic));
    await consumer.create(paths.offset(group, topic, '0-0'), `7340032-${RECORD}`);
    await consumer.create(paths.offset(group, topic, '1-1'), '-1-0');
    ctx = await openCluster({ zk: cluster.zkConnect });
  });

  after(async () => {
    await ctx?.close();
    await consumer?.close();
    await cluster?.stop();
    await dir?.remove();
  });

  const flags = (more: Partial<OffsetsFlags> = {}): OffsetsFlags => ({ zk: cluster.zkConnect, group, topic, ...more });
  const reset = (to: ResetTarget, more: Partial<OffsetsFlags> = {}) => resetOffsets(ctx, flags(more), to, capture());
  const stored = async (partition: string) => (await consumer.getData(paths.offset(group, topic, partition)))?.data.toString();

  it('lists every broker with its master, slaves, config checksum and whether each answers', async () => {
    const report = await brokersReport(ctx);
    assert.deepEqual(report.brokers.map((b) => b.id), [0, 1]);
    for (const b of report.brokers) {
      assert.equal(b.master?.url, cluster.brokers[b.id]!.url);
      assert.equal(b.master?.alive, true, b.master?.error ?? '');
      assert.match(b.master?.version ?? '', /^\d+\.\d+/);
      assert.match(b.configChecksum ?? '', /^\d+$/);
    }
    const slave = report.brokers[0]!.slaves[0]!;
    assert.deepEqual([slave.slaveId, slave.url, slave.alive], [1, `meta://127.0.0.1:${deadPort}`, false]);
    assert.match(slave.error ?? '', /cannot reach|closed/);
    const text = renderBrokers(report);
    assert.match(text, /^ID\s+ROLE\s+URL\s+ALIVE/);
    assert.match(text, new RegExp(`^ 0\\s+slave1\\s+meta://127\\.0\\.0\\.1:${deadPort}\\s+no`, 'm'));
  });

  it('runs as a child process: brokers --json parses, and topics --zk prints sizes per broker', async () => {
    const brokers = await runMetaq(['brokers', '--zk', cluster.zkConnect, '--json']);
    assert.equal(brokers.code, 0, brokers.stderr);
    const parsed = JSON.parse(brokers.stdout) as { zkRoot: string; brokers: { id: number; master: { alive: boolean } }[] };
    assert.equal(parsed.zkRoot, '/meta');
    assert.deepEqual(parsed.brokers.map((b) => [b.id, b.master.alive]), [[0, true], [1, true]]);

    const topics = await runMetaq(['topics', '--zk', cluster.zkConnect]);
    assert.equal(topics.code, 0, topics.stderr);
    assert.match(topics.stdout, /^TOPIC\s+BROKER\s+URL\s+PARTITIONS\s+PUBLISH\s+SUBSCRIBE\s+MESSAGES\s+BYTES/);
    assert.match(topics.stdout, new RegExp(`^${topic}\\s+0-m\\s+meta://\\S+\\s+2\\s+yes\\s+yes\\s+4\\s+${4 * RECORD}\\b`, 'm'));
    assert.match(topics.stdout, new RegExp(`^${topic}\\s+1-m\\s+meta://\\S+\\s+2\\s+yes\\s+yes\\s+2\\s+${2 * RECORD}\\b`, 'm'));
  });

  it('reports per-partition ranges of each topic registration', async () => {
    const report = await topicsReport(ctx);
    const t = report.topics.find((x) => x.topic === topic);
    assert.ok(t !== undefined, 'topic listed');
    assert.deepEqual(t.brokers.map((b) => [b.role, b.numParts, b.publish, b.subscribe]), [['0-m', 2, true, true], ['1-m', 2, true, true]]);
    assert.deepEqual(t.brokers[0]!.partitions, [{ partition: 0, minOffset: 0, maxOffset: 4 * RECORD }, { partition: 1, minOffset: 0, maxOffset: 0 }]);
    assert.deepEqual(t.brokers[1]!.partitions, [{ partition: 0, minOffset: 0, maxOffset: 0 }, { partition: 1, minOffset: 0, maxOffset: 2 * RECORD }]);
  });

  it('shows a group: members, owners, committed offsets, end offsets and lag in bytes', async () => {
    const report = await groupReport(ctx, group);
    assert.deepEqual(report.members, [{ id: member, topics: [topic] }]);
    const rows = report.topics[0]!.partitions.map((p) => [p.name, p.owner, p.committed, p.committedOffset, p.maxOffset, p.lag]);
    assert.deepEqual(rows, [
      ['0-0', member, `7340032-${RECORD}`, RECORD, 4 * RECORD, 3 * RECORD],
      ['0-1', null, null, null, 0, null],
      ['1-0', null, null, null, 0, null],
      ['1-1', null, '-1-0', 0, 2 * RECORD, 2 * RECORD],
    ]);
    assert.equal(report.lag, 5 * RECORD);
    const summary = (await groupsSummary(ctx)).find((g) => g.group === group);
    assert.deepEqual(summary, { group, members: 1, topics: [topic], ownedPartitions: 1, lag: 5 * RECORD });

    const io = capture();
    assert.equal(await groupsCommand(group, { zk: cluster.zkConnect }, io), 0);
    assert.match(io.stdout, new RegExp(`^group ${group}: 1 member\\(s\\), total lag ${5 * RECORD} bytes`));
    assert.match(io.stdout, new RegExp(`^${topic}\\s+0-0\\s+${member}\\s+7340032-${RECORD}\\s+${RECORD}\\s+${4 * RECORD}\\s+${3 * RECORD}`, 'm'));
    const json = capture();
    assert.equal(await groupsCommand(undefined, { zk: cluster.zkConnect, json: true }, json), 0);
    const parsed = JSON.parse(json.stdout) as { groups: { group: string; lag: number }[] };
    assert.equal(parsed.groups.find((g) => g.group === group)?.lag, 5 * RECORD);
  });

  it('reads ZooKeeper from -c server.ini [zookeeper] and names the known groups for an unknown one', async () => {
    const ini = join(dir.path, 'server.ini');
    await writeFile(ini, `[system]\nbrokerId=0\nnumPartitions=1\n[zookeeper]\nzk.zkConnect=${cluster.zkConnect}\nzk.zkRoot=/meta\n[topic=x]\n`);
    const io = capture();
    assert.equal(await groupsCommand(undefined, { config: ini }, io), 0);
    assert.match(io.stdout, new RegExp(`^${group}\\s+1\\s+${topic}\\s+1\\s+${5 * RECORD}$`, 'm'));
    await assert.rejects(groupsCommand('nosuch', { config: ini }, capture()),
      (e: unknown) => e instanceof CoordinationError && new RegExp(`unknown group nosuch: .*groups: .*${group}`).test(e.message));
  });

  it('shows the offsets of the partitions asked for', async () => {
    const rows = await showOffsets(ctx, flags({ partition: ['1-1', '0-0'] }));
    assert.deepEqual(rows.map((r) => [r.name, r.committedOffset, r.lag]), [['0-0', RECORD, 3 * RECORD], ['1-1', 0, 2 * RECORD]]);
    await assert.rejects(showOffsets(ctx, flags({ topic: 'never-registered' })), /unknown topic never-registered: no broker registers it/);
  });

  it('refuses to reset an owned partition, naming the owner, and leaves its offset alone', async () => {
    const before = await consumer.getData(paths.offset(group, topic, '0-0'));
    await assert.rejects(reset('earliest', { partition: ['0-0', '1-1'] }),
      (e: unknown) => e instanceof CoordinationError && e.message.includes(`${topic} 0-0 is owned by ${member}`) && e.message.includes('--force'));
    const now = await consumer.getData(paths.offset(group, topic, '0-0'));
    assert.equal(now?.stat.version, before?.stat.version);
    assert.equal(await stored('1-1'), '-1-0', 'nothing written when one partition is refused');
    const child = await runMetaq(['offsets', 'skip', '--zk', cluster.zkConnect, '--group', group, '--topic', topic]);
    assert.equal(child.code, 1);
    assert.match(child.stderr, new RegExp(`^metaq: refused: ${topic} 0-0 is owned by ${member}`));
  });

  it('resets an owned partition with --force, so the owner\'s next fenced commit is refused', async () => {
    const ownerStat = (await consumer.getData(paths.owner(group, topic, '0-0')))!.stat;
    const offsetPath = paths.offset(group, topic, '0-0');
    const commit = (data: string, version: number) => consumer.multi([
      { op: 'check', path: paths.owner(group, topic, '0-0'), version: ownerStat.version },
      { op: 'set', path: offsetPath, data, version },
    ]);
    // Control: the owner's commit at the version it knows succeeds before the reset.
    const known = (await consumer.getData(offsetPath))!.stat.version;
    await commit(`7340033-${2 * RECORD}`, known);
    const io = capture();
    const report = await resetOffsets(ctx, flags({ partition: ['0-0'], force: true }), 'earliest', io);
    assert.deepEqual(report.partitions.map((r) => [r.partition, r.owner, r.previous, r.written, r.version]),
      [['0-0', member, `7340033-${2 * RECORD}`, '-1-0', known + 2]]);
    assert.match(io.stderr, /warning: .* 0-0 is owned by .*its next commit will be refused/);
    await assert.rejects(commit(`7340034-${3 * RECORD}`, known + 1), (e: unknown) => zkCodeOf(e) === 'BAD_VERSION');
    assert.equal(await stored('0-0'), '-1-0');
  });

  it('resets to latest, to a record boundary, and creates a missing offset node', async () => {
    assert.deepEqual((await reset('latest', { partition: ['1-1'] })).partitions.map((r) => r.written), [`-1-${2 * RECORD}`]);
    assert.equal(await stored('1-1'), `-1-${2 * RECORD}`);
    assert.deepEqual((await reset(RECORD, { partition: ['1-1'] })).partitions.map((r) => [r.previous, r.written]),
      [[`-1-${2 * RECORD}`, `-1-${RECORD}`]]);
    assert.deepEqual((await reset(2 * RECORD, { partition: ['1-1'] })).partitions.map((r) => r.written), [`-1-${2 * RECORD}`]);
    const created = await reset('earliest', { partition: ['0-1'] });
    assert.deepEqual(created.partitions.map((r) => [r.previous, r.written, r.version]), [[null, '-1-0', 0]]);
    assert.equal(await stored('0-1'), '-1-0');
  });

  it('refuses a numeric offset outside the partition or inside a record', async () => {
    // A record whose DATA looks like a header (length 0, checksum 1): only the CRC check tells it is not one.
    const raw = await RawClient.connect(cluster.brokers[1]!.port);
    const fake = Buffer.alloc(24);
    fake.writeInt32BE(1, 4);
    assert.equal((await raw.put(topic, 0, fake)).code, 200);
    await raw.close();
    await assert.rejects(reset(20, { partition: ['1-0'] }),
      (e: unknown) => e instanceof InvalidArgumentError && /offset 20 of .* 1-0 is not the start of a record: no record starts there \(checksum mismatch\)/.test(e.message));
    assert.deepEqual((await reset(0, { partition: ['1-0'] })).partitions.map((r) => r.written), ['-1-0']);
    await assert.rejects(reset(RECORD + 1, { partition: ['1-1'] }),
      (e: unknown) => e instanceof InvalidArgumentError && /offset 23 of .* 1-1 is not the start of a record: a record there would end at/.test(e.message));
    await assert.rejects(reset(1000, { partition: ['1-1'] }),
      (e: unknown) => e instanceof InvalidArgumentError && /offset 1000 is outside .* 1-1: its range is \[0, 44\]/.test(e.message));
    await assert.rejects(reset(0, { partition: ['5-0'] }), /partition 5-0 of .* is not registered \(registered: 0-0, 0-1, 1-0, 1-1\)/);
    await assert.rejects(reset('latest', { topic: 'never-registered' }), /unknown topic never-registered/);
  });

  it('skips every unowned partition to its end and prints the JSON report', async () => {
    await consumer.remove(paths.owner(group, topic, '0-0'));
    const io = capture();
    assert.equal(await offsetsCommand('skip', flags({ json: true }), io), 0);
    const report = JSON.parse(io.stdout) as { to: string; partitions: { partition: string; written: string }[] };
    assert.equal(report.to, 'latest');
    assert.deepEqual(report.partitions.map((p) => [p.partition, p.written]),
      [['0-0', `-1-${4 * RECORD}`], ['0-1', '-1-0'], ['1-0', '-1-44'], ['1-1', `-1-${2 * RECORD}`]]);
    assert.equal((await groupReport(ctx, group)).lag, 0);
  });

  it('fails clearly on a bad partition string, a bad --to and an unreachable ZooKeeper', async () => {
    const bad = await runMetaq(['offsets', 'reset', '--zk', cluster.zkConnect, '--group', group, '--topic', topic, '--to', 'earliest', '--partition', '0:1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^metaq: bad partition "0:1": expected <brokerId>-<partition>, e\.g\. 0-3$/m);
    await assert.rejects(offsetsCommand('reset', flags({ to: 'yesterday' }), capture()), /--to yesterday: expected earliest, latest or a byte offset/);
    const port = await freePort();
    const down = await runMetaq(['groups', '--zk', `127.0.0.1:${port}`, '--zk-timeout', '1000']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`^metaq: could not connect to ZooKeeper at 127\\.0\\.0\\.1:${port} within 1000 ms`, 'm'));
    await assert.rejects(zkTarget({}), (e: unknown) => e instanceof InvalidArgumentError && /no ZooKeeper given: use --zk/.test(e.message));
    const standalone = join(dir.path, 'standalone.ini');
    await writeFile(standalone, '[system]\nbrokerId=0\nnumPartitions=1\n[zookeeper]\nzk.zkEnable=false\n[topic=x]\n');
    await assert.rejects(zkTarget({ config: standalone }), /standalone\.ini has no zk\.zkConnect in \[zookeeper\]: give --zk/);
    const empty = capture();
    assert.equal(await groupsCommand(undefined, { zk: cluster.zkConnect, zkRoot: '/elsewhere' }, empty), 0);
    assert.equal(empty.stdout, 'no consumer groups\n');
  });
});
