import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../sdk/errors.js';
import { SYSTEM_KEYS, ZOOKEEPER_KEYS } from './config-keys.js';
import { parseAssignment, parseOverrideKey } from './overrides.js';
import { embeddedConfig, loadConfig, parseConfig, reloadTopics } from './server-config.js';
import { findTopicConfig } from './topic-match.js';

const repoRoot = new URL('../../', import.meta.url).pathname;
const MINIMAL = '[system]\nbrokerId=1\n[zookeeper]\nzk.zkEnable=false\n[topic=t]\n';

function throwsConfig(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

describe('config/server-config', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'metaq-config-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('fills every [system] and [zookeeper] default from MetaQ 1.4 code defaults', () => {
    const c = parseConfig(MINIMAL, { cwd: '/srv' });
    const s = c.system;
    assert.equal(s.brokerId, 1);
    assert.equal(s.serverPort, 8123);
    assert.equal(s.dashboardHttpPort, 8120);
    assert.equal(s.dataPath, join(homedir(), 'meta'));
    assert.equal(s.dataLogPath, s.dataPath);
    assert.equal(s.numPartitions, 1);
    assert.equal(s.unflushThreshold, 1000);
    assert.equal(s.unflushInterval, 10000);
    assert.equal(s.maxSegmentSize, 1073741824);
    assert.equal(s.maxTransferSize, 1048576);
    assert.equal(s.getProcessThreadCount, 10 * cpus().length);
    assert.equal(s.deletePolicy.kind, 'delete');
    assert.equal(s.deletePolicy.maxAgeMs, 168 * 3600_000);
    assert.equal(s.deleteWhen, '0 0 6,18 * * ?');
    assert.deepEqual([s.quartzThreadCount, s.maxCheckpoints, s.checkpointInterval], [5, 3, 3600000]);
    assert.deepEqual([s.maxTxTimeoutTimerCapacity, s.maxTxTimeoutInSeconds, s.flushTxLogAtCommit], [30000, 60, 1]);
    assert.deepEqual([s.acceptPublish, s.acceptSubscribe, s.stat, s.updateConsumerOffsets], [true, true, false, false]);
    assert.equal(s.maxMessageSize, 1048576 - 20);
    assert.deepEqual([s.maxLineBytes, s.longPollTimeoutMs, s.idleTimeoutMs, s.maxConnections], [4096, 2000, 600000, 10000]);
    assert.deepEqual([s.diskMaxUsedRatio, s.shutdownTimeoutMs, s.bindHost], [0.95, 10000, '0.0.0.0']);
    assert.match(s.hostName, /^\d+\.\d+\.\d+\.\d+$/);
    assert.deepEqual(c.zookeeper, {
      zkEnable: false, zkConnect: '', zkSessionTimeoutMs: 30000, zkConnectionTimeoutMs: 30000, zkSyncTimeMs: 5000, zkRoot: '/meta',
    });
  });

  it('lets topic sections fall back to [system] key by key and reads group filters', () => {
    const c = parseConfig(`[system]\nbrokerId=0\nnumPartitions=3\nunflushThreshold=0\nstat=true\ndataPath=/d
deletePolicy=archive,24,zip\n[zookeeper]\nzk.zkEnable=false
[topic=a]\n[topic=b]\nnumPartitions=8\nunflushInterval=50\ndeletePolicy=delete,10\ndataPath=rel\nacceptPublish=false
group.g1=com.x.Filter\ngroup.my.group=Other\nstat=\n`, { cwd: '/work' });
    const [a, b] = c.topics;
    assert.deepEqual([a!.name, a!.numPartitions, a!.unflushThreshold, a!.unflushInterval, a!.stat, a!.dataPath],
      ['a', 3, 0, 10000, true, '/d']);
    assert.equal(a!.deletePolicy, c.system.deletePolicy);
    assert.equal(a!.groupFilters.size, 0);
    assert.deepEqual([b!.numPartitions, b!.unflushInterval, b!.acceptPublish, b!.acceptSubscribe, b!.dataPath, b!.stat],
      [8, 50, false, true, '/work/rel', true]);
    assert.equal(b!.deletePolicy.maxAgeMs, 10 * 3600_000);
    assert.deepEqual([...b!.groupFilters], [['g1', 'com.x.Filter'], ['my.group', 'Other']]);
  });

  it('matches exact topic names before wildcards, and wildcards in file order', () => {
    const c = parseConfig('[system]\nbrokerId=0\n[zookeeper]\nzk.zkEnable=false\n' +
      '[topic=app.*]\nnumPartitions=2\n[topic=*]\nnumPartitions=3\n[topic=app.orders]\nnumPartitions=4\n');
    assert.equal(findTopicConfig(c, 'app.orders')?.numPartitions, 4);
    assert.equal(findTopicConfig(c, 'app.x')?.numPartitions, 2);
    assert.equal(findTopicConfig(c, 'appx')?.numPartitions, 3);
    assert.equal(findTopicConfig(parseConfig(MINIMAL), 'other'), undefined);
  });

  it('evaluates arithmetic in numeric values', () => {
    const c = parseConfig('[system]\nbrokerId=2*3\nmaxSegmentSize=1024*1024\nmaxTransferSize=(1+1)*512*1024\n' +
      'diskMaxUsedRatio=9/10.0\n[zookeeper]\nzk.zkEnable=false\n[topic=t]\nnumPartitions=(1+2)*3\n');
    assert.deepEqual([c.system.brokerId, c.system.maxSegmentSize, c.system.maxTransferSize, c.system.diskMaxUsedRatio],
      [6, 1048576, 1048576, 0.9]);
    assert.equal(c.topics[0]!.numPartitions, 9);
  });

  it('applies overrides on top of the file, creating topic sections, with the same validation', () => {
    const c = parseConfig(MINIMAL, { overrides: {
      'system.serverPort': '9000', 'topic=t.numPartitions': '8', 'topic=new.one.group.g.x': 'F', 'zookeeper.zk.zkRoot': 'x/y/',
    } });
    assert.equal(c.system.serverPort, 9000);
    assert.equal(c.topics[0]!.numPartitions, 8);
    assert.deepEqual([c.topics[1]!.name, [...c.topics[1]!.groupFilters]], ['new.one', [['g.x', 'F']]]);
    assert.equal(c.zookeeper.zkRoot, '/x/y');
    throwsConfig(() => parseConfig(MINIMAL, { overrides: { 'system.serverPrt': '1' } }),
      /^Invalid config key: serverPrt in \[system\] \(override system\.serverPrt\), did you mean 'serverPort'\?$/);
    throwsConfig(() => parseConfig(MINIMAL, { overrides: { 'system.serverPort': '70000' } }),
      /serverPort in \[system\] \(override system\.serverPort\): "70000"; expected an integer in 0\.\.65535/);
  });

  it('splits override keys and --set assignments whose names contain dots and =', () => {
    assert.deepEqual(parseOverrideKey('zookeeper.zk.zkConnect'), { section: 'zookeeper', key: 'zk.zkConnect' });
    assert.deepEqual(parseOverrideKey('topic=a.b.numPartitions'), { section: 'topic=a.b', key: 'numPartitions' });
    assert.deepEqual(parseOverrideKey('topic=a.b.group.c.d'), { section: 'topic=a.b', key: 'group.c.d' });
    assert.deepEqual(parseAssignment('topic=orders.numPartitions=8'), ['topic=orders.numPartitions', '8']);
    assert.deepEqual(parseAssignment('system.deleteWhen=0 0 * * * ?'), ['system.deleteWhen', '0 0 * * * ?']);
    throwsConfig(() => parseAssignment('serverPort'), /expected <section>\.<key>=<value>/);
    throwsConfig(() => parseOverrideKey('serverPort'), /expected <section>\.<key>/);
  });

  const errors: [string, string, RegExp][] = [
    ['a misspelt key', '[system]\nbrokerId=0\nserverPrt=1\n',
      /^Invalid config key: serverPrt in \[system\] \(f\.ini:3\), did you mean 'serverPort'\?$/],
    ['a misspelt zookeeper key', '[system]\nbrokerId=0\n[zookeeper]\nzk.zkConect=x:1\n',
      /^Invalid config key: zk\.zkConect in \[zookeeper\] \(f\.ini:4\), did you mean 'zk\.zkConnect'\?$/],
    ['a misspelt topic key', MINIMAL + 'numPartition=2\n',
      /^Invalid config key: numPartition in \[topic=t\] \(f\.ini:6\), did you mean 'numPartitions'\?$/],
    ['a [system]-only key in a topic section', MINIMAL + 'serverPort=1\n',
      /Invalid config key: serverPort in \[topic=t\] \(f\.ini:6\).*belongs in \[system\]/],
    ['an unknown key without a plausible suggestion', '[system]\nbrokerId=0\ncompletelyUnrelated=1\n',
      /^Invalid config key: completelyUnrelated in \[system\] \(f\.ini:3\)$/],
    ['a misspelt section', '[sytem]\nbrokerId=0\n',
      /^Invalid config section: \[sytem\] \(f\.ini:1\), did you mean 'system'\?$/],
    ['a topic name with a slash', '[system]\nbrokerId=0\n[topic=a/b]\n', /Invalid topic name "a\/b" in \[topic=a\/b\] \(f\.ini:3\)/],
    ['a missing brokerId', '[system]\nserverPort=1\n[topic=t]\n', /Missing required key brokerId in \[system\] \(\[system\] at f\.ini:1\)/],
    ['a missing [system]', '[topic=t]\n', /Missing required key brokerId in \[system\] \(no \[system\] section\)/],
    ['a brokerId out of range', '[system]\nbrokerId=1024\n', /brokerId in \[system\] \(f\.ini:2\): "1024"; expected an integer in 0\.\.1023, got 1024/],
    ['a non-numeric port', '[system]\nbrokerId=0\nserverPort=eighty\n', /serverPort in \[system\] \(f\.ini:3\): "eighty"; expected an integer in 0\.\.65535 or arithmetic/],
    ['a fractional partition count', MINIMAL + 'numPartitions=1.5\n', /numPartitions in \[topic=t\] \(f\.ini:6\): "1\.5"; expected an integer in 1\.\.65535/],
    ['a zero unflushInterval', '[system]\nbrokerId=0\nunflushInterval=0\n', /unflushInterval .*: "0"; expected an integer in 1\.\.2147483647, got 0/],
    ['a bad boolean', '[system]\nbrokerId=0\nstat=yes\n', /stat in \[system\] \(f\.ini:3\): "yes"; expected true or false/],
    ['a ratio above 1', '[system]\nbrokerId=0\ndiskMaxUsedRatio=1.5\n', /diskMaxUsedRatio .*expected a number in 0\.01\.\.1, got 1\.5/],
    ['a bad deletePolicy', '[system]\nbrokerId=0\ndeletePolicy=keep,forever\n', /Invalid value for deletePolicy in \[system\] \(f\.ini:3\): "keep,forever"; expected 'delete,<age>'/],
    ['a bad deleteWhen', MINIMAL + 'deleteWhen=0 0 6\n', /deleteWhen in \[topic=t\] \(f\.ini:6\): "0 0 6"; expected a Quartz cron.*must have 6 or 7 fields/],
    ['a malformed zkConnect', '[system]\nbrokerId=0\n[zookeeper]\nzk.zkConnect=a b\n', /zk\.zkConnect in \[zookeeper\] \(f\.ini:4\): "a b"/],
    ['zk enabled without zkConnect', '[system]\nbrokerId=0\n[topic=t]\n', /zk\.zkConnect is required in \[zookeeper\] when zk\.zkEnable=true \(f\.ini\)/],
    ['no topic section', '[system]\nbrokerId=0\n[zookeeper]\nzk.zkEnable=false\n', /No \[topic=<name>\] section \(f\.ini\)/],
    ['maxMessageSize above maxTransferSize - 20', '[system]\nbrokerId=0\nmaxTransferSize=1000\nmaxMessageSize=990\n[zookeeper]\nzk.zkEnable=false\n[topic=t]\n',
      /maxMessageSize 990 exceeds maxTransferSize - 20 = 980/],
    ['equal protocol and dashboard ports', '[system]\nbrokerId=0\nserverPort=9000\ndashboardHttpPort=9000\n[zookeeper]\nzk.zkEnable=false\n[topic=t]\n',
      /serverPort and dashboardHttpPort are both 9000/],
  ];
  for (const [what, text, message] of errors) {
    it(`refuses ${what} with a message naming it`, () => throwsConfig(() => parseConfig(text, { file: 'f.ini' }), message));
  }

  it('accepts zk.zkConnect lists with a chroot when ZooKeeper is enabled', () => {
    const c = parseConfig('[system]\nbrokerId=0\n[zookeeper]\nzk.zkConnect=h1:2181,h2:2182/metaq\n[topic=t]\n');
    assert.deepEqual([c.zookeeper.zkEnable, c.zookeeper.zkConnect], [true, 'h1:2181,h2:2182/metaq']);
  });

  it('gives npm start a standalone broker that accepts any topic', () => {
    const c = embeddedConfig(undefined, '/srv/x');
    assert.deepEqual([c.system.brokerId, c.system.serverPort, c.system.dashboardHttpPort, c.system.dataPath],
      [0, 8123, 8120, '/srv/x/data']);
    assert.deepEqual([c.system.numPartitions, c.system.unflushThreshold, c.zookeeper.zkEnable], [4, 0, false]);
    assert.equal(findTopicConfig(c, 'anything-at-all')?.numPartitions, 4);
    assert.equal(c.sourceFile, undefined);
    assert.equal(embeddedConfig({ 'system.serverPort': '0' }).system.serverPort, 0);
  });

  it('loads the shipped conf/server.ini cleanly, and it documents every key', async () => {
    const c = await loadConfig(join(repoRoot, 'conf/server.ini'));
    assert.equal(c.sourceFile, join(repoRoot, 'conf/server.ini'));
    assert.deepEqual(c.topics.map((t) => t.name), ['test', 'meta-test']);
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(join(repoRoot, 'conf/server.ini'), 'utf8');
    for (const key of [...Object.keys(SYSTEM_KEYS), ...Object.keys(ZOOKEEPER_KEYS)]) {
      assert.match(text, new RegExp(`^${key.replace('.', '\\.')}=`, 'm'), `conf/server.ini lacks ${key}`);
    }
  });

  it('names the file when it cannot be read', async () => {
    await assert.rejects(loadConfig(join(dir, 'missing.ini')), /Cannot read config file .*missing\.ini: ENOENT/);
  });

  it('reloads only the topic sections, keeping [system] and the overrides', async () => {
    const path = join(dir, 'reload.ini');
    await writeFile(path, MINIMAL + 'numPartitions=2\n');
    const first = await loadConfig(path, { 'topic=t.unflushInterval': '77' });
    await writeFile(path, MINIMAL.replace('brokerId=1', 'brokerId=5') + 'numPartitions=6\n[topic=u]\n');
    const second = await reloadTopics(first);
    assert.equal(second.system, first.system);
    assert.deepEqual(second.topics.map((t) => [t.name, t.numPartitions, t.unflushInterval]), [['t', 6, 77], ['u', 1, 10000]]);
    await assert.rejects(reloadTopics(embeddedConfig()), /did not come from a file/);
  });
});
