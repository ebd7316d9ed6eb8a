/**
 * Broker registration in ZooKeeper against a real ZooKeeper and real brokers (in-process, and one spawned process):
 * MetaQ's layout and data, lazy and on-disk topics, re-registration after session expiry and after a frozen
 * ZooKeeper, clean unregistration, duplicate ids, standalone mode, unreachable ZooKeeper.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { startBroker } from '../broker/broker.js';
import { embeddedConfig, loadConfig, reloadTopics } from '../broker/config/server-config.js';
import { CoordinationError } from '../sdk/errors.js';
import { ZkPaths } from '../sdk/protocol/zk/zk-layout.js';
import { ZkSession } from '../sdk/protocol/zk/zk-session.js';
import { startCluster, type ClusterBroker } from './harness/cluster.js';
import { freePort } from './harness/free-port.js';
import { RawClient } from './harness/raw-client.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from './harness/zookeeper.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const NO_OWNER = '0000000000000000';

let zk: ZooKeeperServer;
let reader: ZkSession;

before(async () => {
  zk = await startZooKeeper();
  reader = await ZkSession.open({ connect: zk.connectString, sessionTimeoutMs: 10_000, connectTimeoutMs: 10_000, logger });
});

after(async () => {
  await reader.close();
  await zk.stop();
});

/** A zkRoot of its own per test: tests share the ZooKeeper, never a tree. */
function newRoot(): { root: string; paths: ZkPaths } {
  const root = `/${uniqueName('reg')}`;
  return { root, paths: new ZkPaths(root) };
}

async function data(path: string): Promise<string | undefined> {
  return (await reader.getData(path))?.data.toString();
}

async function owner(path: string): Promise<string | undefined> {
  return (await reader.exists(path))?.ephemeralOwner;
}

function sessionOf(b: ClusterBroker): ZkSession {
  const s = b.broker?.registry?.session;
  assert.ok(s !== undefined, `broker ${b.id} has no ZooKeeper session`);
  return s;
}

async function put(port: number, topic: string, partition: number): Promise<void> {
  const c = await RawClient.connect(port);
  try {
    const r = await c.put(topic, partition, 'hello');
    assert.equal(r.code, 200);
  } finally {
    await c.close();
  }
}

describe('cluster/broker-registry', () => {
  it('registers MetaQ 1.4 layout: ids, master, config checksum, and topics / topics-pub / topics-sub per accepted role', async () => {
    const { root, paths } = newRoot();
    const dir = await tempDir('metaq-reg-ini-');
    const ini = join(dir.path, 'server.ini');
    await writeFile(ini, [
      '[system]', 'brokerId=7', 'numPartitions=2', `dataPath=${dir.path}/data`, 'hostName=127.0.0.1', 'serverPort=0',
      'dashboardHttpPort=0', 'unflushThreshold=0', 'unflushInterval=10000', 'maxSegmentSize=1073741824',
      'maxTransferSize=1048576',
      '[zookeeper]', 'zk.zkEnable=true', `zk.zkConnect=${zk.connectString}`, `zk.zkRoot=${root}`, 'zk.zkSyncTimeMs=0',
      'zk.zkSessionTimeoutMs=4000',
      '[topic=orders]', 'numPartitions=3',
      '[topic=audit]', 'acceptPublish=false',
      '[topic=feed]', 'acceptSubscribe=false',
      '[topic=*]', '',
    ].join('\n'));
    const broker = await startBroker(await loadConfig(ini), { logger });
    try {
      const url = `meta://127.0.0.1:${broker.port}`;
      assert.equal(await data(paths.brokerIdDir(7)), url);
      assert.equal(await owner(paths.brokerIdDir(7)), NO_OWNER, 'the id node is persistent');
      assert.equal(await data(paths.brokerMaster(7)), url);
      assert.equal(await owner(paths.brokerMaster(7)), broker.registry!.session.sessionId);
      assert.equal(await data(paths.brokerConfigChecksum(7)), String(crc32(await readFile(ini)) >>> 0));
      assert.equal(await owner(paths.brokerConfigChecksum(7)), broker.registry!.session.sessionId);

      assert.equal(await data(paths.topicBroker('topics', 'orders', 7)), '3');
      assert.equal(await data(paths.topicBroker('topics-pub', 'orders', 7)), '{"numParts":3,"broker":"7-m"}');
      assert.equal(await data(paths.topicBroker('topics-sub', 'orders', 7)), '{"numParts":3,"broker":"7-m"}');
      assert.equal(await data(paths.topicBroker('topics', 'audit', 7)), '2');
      assert.equal(await data(paths.topicBroker('topics-pub', 'audit', 7)), undefined);
      assert.equal(await data(paths.topicBroker('topics-sub', 'audit', 7)), '{"numParts":2,"broker":"7-m"}');
      assert.equal(await data(paths.topicBroker('topics-pub', 'feed', 7)), '{"numParts":2,"broker":"7-m"}');
      assert.equal(await data(paths.topicBroker('topics-sub', 'feed', 7)), undefined);
      for (const kind of ['topics', 'topics-pub', 'topics-sub'] as const) {
        const ephemeral = await owner(paths.topicBroker(kind, 'orders', 7));
        assert.equal(ephemeral, broker.registry!.session.sessionId, `${kind} node is ephemeral`);
      }
      // A wildcard section registers under its pattern, as MetaQ does (producers use it as their default topic).
      assert.deepEqual((await reader.getChildren(paths.topicRegistry('topics')))?.sort(), ['*', 'audit', 'feed', 'orders']);
      assert.deepEqual(await reader.getChildren(paths.brokerIds), ['7']);

      // A reload that stops publishing a topic takes its topics-pub node away and keeps the rest.
      await writeFile(ini, (await readFile(ini, 'utf8')).replace('[topic=orders]\nnumPartitions=3', '[topic=orders]\nnumPartitions=3\nacceptPublish=false'));
      await broker.registry!.reloadTopics(await reloadTopics(broker.config, ini));
      assert.equal(await data(paths.topicBroker('topics-pub', 'orders', 7)), undefined);
      assert.equal(await data(paths.topicBroker('topics-sub', 'orders', 7)), '{"numParts":3,"broker":"7-m"}');
    } finally {
      await broker.close();
      await dir.remove();
    }
  });

  it('registers a topic first seen through a put soon after the put, and topics with data on disk after a restart', async () => {
    const { root, paths } = newRoot();
    const cluster = await startCluster({ zk, numPartitions: 4, set: { 'zookeeper.zk.zkRoot': root } });
    try {
      const b = cluster.brokers[0]!;
      const topic = uniqueName('lazy');
      assert.equal(await data(paths.topicBroker('topics-pub', topic, 0)), undefined);
      await put(b.port, topic, 3);
      const json = '{"numParts":4,"broker":"0-m"}';
      // The three nodes are created concurrently: wait for all of them.
      await waitFor(async () => await data(paths.topicBroker('topics-pub', topic, 0)) === json &&
        await data(paths.topicBroker('topics-sub', topic, 0)) === json &&
        await data(paths.topicBroker('topics', topic, 0)) === '4', { what: 'the lazy topic registration' });

      const portBefore = b.port;
      await b.stop();
      assert.equal(await data(paths.topicBroker('topics-pub', topic, 0)), undefined, 'unregistered at stop');
      await b.start();
      assert.equal(b.port, portBefore, 'restarted on its port');
      // Registered by start itself (no put since): the data on disk is a topic the broker serves.
      assert.equal(await data(paths.topicBroker('topics-pub', topic, 0)), json);
      assert.equal(await data(paths.topicBroker('topics-sub', topic, 0)), json);

      const added = await cluster.addBroker();
      assert.equal(added.id, 1);
      assert.equal(await data(paths.brokerMaster(1)), added.url);
    } finally {
      await cluster.stop();
    }
  });

  it('registers the partitions on disk when they outnumber the configured count', async () => {
    const { root, paths } = newRoot();
    const dir = await tempDir('metaq-reg-parts-');
    const base = { 'system.dataPath': dir.path, 'system.serverPort': '0', 'system.hostName': '127.0.0.1', 'system.dashboardHttpPort': '0',
      'zookeeper.zk.zkEnable': 'true', 'zookeeper.zk.zkConnect': zk.connectString, 'zookeeper.zk.zkRoot': root,
      'zookeeper.zk.zkSyncTimeMs': '0' };
    const topic = uniqueName('wide');
    try {
      const first = await startBroker(embeddedConfig({ ...base, 'system.numPartitions': '6' }), { logger });
      await put(first.port, topic, 5);
      await first.close();
      const second = await startBroker(embeddedConfig({ ...base, 'system.numPartitions': '2' }), { logger });
      try {
        assert.equal(await data(paths.topicBroker('topics-pub', topic, 0)), '{"numParts":6,"broker":"0-m"}');
      } finally {
        await second.close();
      }
    } finally {
      await dir.remove();
    }
  });

  it('registers everything again on a new session after its session is expired', async () => {
    const { root, paths } = newRoot();
    const cluster = await startCluster({ zk, set: { 'zookeeper.zk.zkRoot': root, 'topic=expiry.numPartitions': '2' } });
    try {
      const b = cluster.brokers[0]!;
      const session = sessionOf(b);
      const old = session.sessionId;
      let fresh: string | undefined;
      session.onSession((e) => { if (e.type === 'established' && !e.first) fresh = e.sessionId; });
      // The ZooKeeper FAQ trick: a second client joins the session and closes it, which expires it. The broker's
      // client reconnects at once when the twin takes its connection and may win the session back before the twin
      // closes it, so try again until the broker is on a new session.
      await waitFor(async () => {
        if (fresh === undefined && session.isAlive && session.sessionId === old) {
          const twin = await ZkSession.open({ connect: zk.connectString, sessionTimeoutMs: 4000, connectTimeoutMs: 2000,
            logger, resume: session.credentials }).catch(() => undefined);
          await twin?.close();
        }
        return fresh;
      }, { timeoutMs: 30_000, intervalMs: 250, what: 'the broker on a new session' });
      assert.ok(fresh !== undefined);
      assert.notEqual(fresh, old);
      await waitFor(async () => await owner(paths.brokerMaster(0)) === fresh &&
        await owner(paths.topicBroker('topics-pub', 'expiry', 0)) === fresh &&
        await owner(paths.topicBroker('topics-sub', 'expiry', 0)) === fresh &&
        await owner(paths.topicBroker('topics', 'expiry', 0)) === fresh &&
        await owner(paths.brokerConfigChecksum(0)) === fresh, { what: 'registration on the new session' });
      assert.equal(await data(paths.brokerMaster(0)), b.url);
      assert.equal(await data(paths.topicBroker('topics-sub', 'expiry', 0)), '{"numParts":2,"broker":"0-m"}');
    } finally {
      await cluster.stop();
    }
  });

  it('registers again after ZooKeeper was frozen beyond the session timeout', async () => {
    const { root, paths } = newRoot();
    const cluster = await startCluster({ zk, set: { 'zookeeper.zk.zkRoot': root, 'zookeeper.zk.zkSessionTimeoutMs': '1500',
      'topic=frozen.numPartitions': '1' } });
    try {
      const b = cluster.brokers[0]!;
      const session = sessionOf(b);
      const old = session.sessionId;
      zk.pause();
      try {
        // The broker's watchdog gives the session up (2/3 of the timeout without an answer).
        await waitFor(() => !session.isAlive, { timeoutMs: 10_000, what: 'the broker to give its session up' });
      } finally {
        zk.resume();
      }
      await waitFor(async () => session.isAlive && session.sessionId !== old &&
        await owner(paths.brokerMaster(0)) === session.sessionId &&
        await owner(paths.topicBroker('topics-pub', 'frozen', 0)) === session.sessionId,
      { timeoutMs: 20_000, what: 'registration on a new session' });
      assert.equal(await data(paths.brokerMaster(0)), b.url);
    } finally {
      await cluster.stop();
    }
  });

  it('removes its ephemerals and its id node at a clean shutdown, keeping the id node (emptied) under a live slave', async () => {
    const { root, paths } = newRoot();
    const cluster = await startCluster({ zk, brokers: 2, set: { 'zookeeper.zk.zkRoot': root, 'topic=bye.numPartitions': '1' } });
    try {
      const [b0, b1] = [cluster.brokers[0]!, cluster.brokers[1]!];
      await b0.stop();
      assert.equal(await reader.exists(paths.brokerIdDir(0)), undefined);
      for (const kind of ['topics', 'topics-pub', 'topics-sub'] as const) {
        assert.equal(await reader.exists(paths.topicBroker(kind, 'bye', 0)), undefined, kind);
      }
      assert.equal(await data(paths.topicBroker('topics-pub', 'bye', 1)), '{"numParts":1,"broker":"1-m"}', 'the other broker stays');

      // A slave registered under broker 1: the id node stays, with an empty URL, as MetaQ leaves it.
      await reader.createEphemeral(paths.brokerSlave(1, 0), 'meta://127.0.0.1:1');
      await b1.stop();
      assert.equal(await data(paths.brokerIdDir(1)), '');
      assert.equal(await reader.exists(paths.brokerMaster(1)), undefined);
      assert.equal(await reader.exists(paths.brokerConfigChecksum(1)), undefined);
      assert.equal(await data(paths.brokerSlave(1, 0)), 'meta://127.0.0.1:1');
      await reader.remove(paths.brokerSlave(1, 0));
    } finally {
      await cluster.stop();
    }
  });

  it('refuses to start a second live broker with the same id, leaving the first one registered', async () => {
    const { root, paths } = newRoot();
    const cluster = await startCluster({ zk, set: { 'zookeeper.zk.zkRoot': root } });
    const dir = await tempDir('metaq-reg-dup-');
    try {
      const b = cluster.brokers[0]!;
      const config = embeddedConfig({ 'system.dataPath': dir.path, 'system.serverPort': '0', 'system.hostName': '127.0.0.1',
        'system.dashboardHttpPort': '0', 'zookeeper.zk.zkEnable': 'true', 'zookeeper.zk.zkConnect': zk.connectString,
        'zookeeper.zk.zkRoot': root, 'zookeeper.zk.zkSyncTimeMs': '0' });
      await assert.rejects(startBroker(config, { logger }), (e: unknown) =>
        e instanceof CoordinationError && e.zkCode === 'NODE_EXISTS' &&
        /broker 0 is already registered by another live broker .*meta:\/\/127\.0\.0\.1:\d+.*system\.brokerId/.test(e.message));
      assert.equal(await data(paths.brokerMaster(0)), b.url);
      assert.equal(await data(paths.brokerIdDir(0)), b.url);
      assert.equal(await owner(paths.brokerMaster(0)), sessionOf(b).sessionId);
    } finally {
      await cluster.stop();
      await dir.remove();
    }
  });

  it('touches no ZooKeeper with zk.zkEnable=false, even with zk.zkConnect set', async () => {
    const accepted: Socket[] = [];
    const fake = createServer((s) => { accepted.push(s); s.destroy(); });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const port = (fake.address() as { port: number }).port;
    const dir = await tempDir('metaq-reg-off-');
    try {
      const broker = await startBroker(embeddedConfig({ 'system.dataPath': dir.path, 'system.serverPort': '0',
        'system.dashboardHttpPort': '0', 'zookeeper.zk.zkEnable': 'false', 'zookeeper.zk.zkConnect': `127.0.0.1:${port}` }), { logger });
      try {
        assert.equal(broker.registry, undefined);
        await put(broker.port, uniqueName('standalone'), 0);
      } finally {
        await broker.close();
      }
      assert.equal(accepted.length, 0);
    } finally {
      fake.close();
      await dir.remove();
    }
  });

  it('fails to start with a clear error when ZooKeeper is unreachable within zk.zkConnectionTimeoutMs', async () => {
    const dir = await tempDir('metaq-reg-unreach-');
    const deadPort = await freePort();
    try {
      const config = embeddedConfig({ 'system.dataPath': dir.path, 'system.serverPort': '0', 'system.dashboardHttpPort': '0',
        'zookeeper.zk.zkEnable': 'true', 'zookeeper.zk.zkConnect': `127.0.0.1:${deadPort}`, 'zookeeper.zk.zkConnectionTimeoutMs': '1000' });
      const t0 = Date.now();
      await assert.rejects(startBroker(config, { logger }), (e: unknown) => e instanceof CoordinationError &&
        e.message === `broker 0 cannot register: ZooKeeper at 127.0.0.1:${deadPort} unreachable within 1000 ms (zk.zkConnectionTimeoutMs)`);
      assert.ok(Date.now() - t0 < 5000, `gave up after ${Date.now() - t0} ms`);
      // The data dir was closed cleanly: a standalone broker opens it again.
      const again = await startBroker(embeddedConfig({ 'system.dataPath': dir.path, 'system.serverPort': '0',
        'system.dashboardHttpPort': '0' }), { logger });
      assert.equal(again.store.recoveryReport.cuts.length, 0);
      await again.close();
    } finally {
      await dir.remove();
    }
  });

  it('re-registers a spawned broker process that was stopped (SIGSTOP) beyond its session timeout', async () => {
    const { root, paths } = newRoot();
    const cluster = await startCluster({ zk, spawn: true, set: { 'zookeeper.zk.zkRoot': root,
      'zookeeper.zk.zkSessionTimeoutMs': '1500', 'topic=sleepy.numPartitions': '1' } });
    try {
      const b = cluster.brokers[0]!;
      assert.ok(b.pid !== undefined);
      assert.equal(await data(paths.brokerMaster(0)), b.url);
      const old = await owner(paths.brokerMaster(0));
      b.process!.kill('SIGSTOP');
      try {
        // The server expires the frozen broker's session and deletes its ephemerals.
        await waitFor(async () => await reader.exists(paths.brokerMaster(0)) === undefined, { timeoutMs: 15_000, what: 'the master node to expire' });
      } finally {
        b.process!.kill('SIGCONT');
      }
      await waitFor(async () => {
        const o = await owner(paths.brokerMaster(0));
        return o !== undefined && o !== old && await owner(paths.topicBroker('topics-pub', 'sleepy', 0)) === o;
      }, { timeoutMs: 20_000, what: 'the process to register again' });
      assert.equal(await data(paths.brokerMaster(0)), b.url);

      // kill -9 and an immediate restart on the same port: the dead run's node names this very URL, so the new run
      // waits for ZooKeeper to expire it instead of refusing to start.
      const beforeKill = await owner(paths.brokerMaster(0));
      b.process!.kill('SIGKILL');
      await b.process!.exited;
      await b.start();
      const afterKill = await owner(paths.brokerMaster(0));
      assert.ok(afterKill !== undefined && afterKill !== beforeKill);
      assert.equal(await data(paths.brokerMaster(0)), b.url);
      assert.equal(b.process!.logRecords('registration of an earlier run of this broker still there: waiting for its session to expire').length, 1);

      await b.stop();
      assert.equal(await reader.exists(paths.brokerIdDir(0)), undefined);
    } finally {
      await cluster.stop();
    }
  });
});
