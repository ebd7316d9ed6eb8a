/**
 * ZkSession against a real ZooKeeper: operations and their errors, re-arming watches, ephemeral takeover, session
 * expiry (the same-session trick), the watchdog when the server freezes, and an unreachable server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { CoordinationError } from '../sdk/errors.js';
import { ZkSession, type ZkSessionEvent } from '../sdk/protocol/zk/zk-session.js';
import { freePort } from './harness/free-port.js';
import { waitFor } from './harness/wait-for.js';
import { expireSession, startZooKeeper, type ZooKeeperServer } from './harness/zookeeper.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let zk: ZooKeeperServer;
const sessions: ZkSession[] = [];

async function open(sessionTimeoutMs = 4000): Promise<ZkSession> {
  const s = await ZkSession.open({ connect: zk.connectString, sessionTimeoutMs, connectTimeoutMs: 10_000, logger });
  sessions.push(s);
  return s;
}

function events(s: ZkSession): ZkSessionEvent[] {
  const out: ZkSessionEvent[] = [];
  s.onSession((e) => out.push(e));
  return out;
}


before(async () => {
  zk = await startZooKeeper();
});

after(async () => {
  for (const s of sessions) await s.close();
  await zk.stop();
});

describe('ZkSession operations', () => {
  test('create, read, versioned set and remove behave as ZooKeeper says, with named errors', async () => {
    const s = await open();
    await s.ensurePath('/ops/a/b');
    await s.ensurePath('/ops/a/b');  // again: fine
    assert.deepEqual(await s.getChildren('/ops/a'), ['b']);
    assert.equal(await s.getChildren('/ops/missing'), undefined);
    assert.equal(await s.getData('/ops/missing'), undefined);
    assert.equal(await s.exists('/ops/missing'), undefined);
    await s.create('/ops/a/n', 'one');
    const n = await s.getData('/ops/a/n');
    assert.equal(n?.data.toString(), 'one');
    assert.equal(n?.stat.version, 0);
    assert.equal(n?.stat.ephemeralOwner, '0000000000000000');
    const st = await s.setData('/ops/a/n', 'two', 0);
    assert.equal(st.version, 1);
    await assert.rejects(s.setData('/ops/a/n', 'three', 0), (e: unknown) => e instanceof CoordinationError && e.zkCode === 'BAD_VERSION' && e.message.includes('/ops/a/n'));
    await assert.rejects(s.create('/ops/a/n', 'x'), (e: unknown) => e instanceof CoordinationError && e.zkCode === 'NODE_EXISTS');
    assert.equal(await s.remove('/ops/a/n'), true);
    assert.equal(await s.remove('/ops/a/n'), false);
    await s.create('/ops/a/b/c', 'deep');
    await s.removeRecursive('/ops');
    assert.equal(await s.exists('/ops'), undefined);
  });

  test('multi applies every operation or none, and names the one that failed', async () => {
    const s = await open();
    await s.ensurePath('/multi');
    await s.create('/multi/owner', 'me');
    await s.create('/multi/offset', '-1-0');
    await s.multi([{ op: 'check', path: '/multi/owner', version: 0 }, { op: 'set', path: '/multi/offset', data: '-1-100', version: 0 }]);
    assert.equal((await s.getData('/multi/offset'))?.data.toString(), '-1-100');
    await assert.rejects(
      s.multi([{ op: 'check', path: '/multi/owner', version: 0 }, { op: 'set', path: '/multi/offset', data: '-1-200', version: 0 }]),
      (e: unknown) => e instanceof CoordinationError && e.zkCode === 'BAD_VERSION' && e.message.includes('/multi/offset'));
    await s.remove('/multi/owner');
    await assert.rejects(
      s.multi([{ op: 'check', path: '/multi/owner', version: 0 }, { op: 'set', path: '/multi/offset', data: '-1-300', version: 1 }]),
      (e: unknown) => e instanceof CoordinationError && e.zkCode === 'NO_NODE' && e.message.includes('/multi/owner'));
    assert.equal((await s.getData('/multi/offset'))?.data.toString(), '-1-100', 'nothing of a failed multi was applied');
  });

  test('watchChildren reports the current list, every change, and the node going and coming back', async () => {
    const s = await open();
    const seen: (string[] | undefined)[] = [];
    const w = s.watchChildren('/watched', (c) => seen.push(c === undefined ? undefined : [...c].sort()));
    await waitFor(() => seen.length >= 1, { timeoutMs: 5000, what: 'the first read' });
    assert.equal(seen.at(-1), undefined, 'the node does not exist yet');
    await s.ensurePath('/watched/a');
    await waitFor(() => seen.at(-1)?.join() === 'a', { timeoutMs: 5000, what: 'the creation and the first child' });
    await s.create('/watched/b');
    await waitFor(() => seen.at(-1)?.join() === 'a,b', { timeoutMs: 5000, what: 'a second child' });
    await s.removeRecursive('/watched');
    await waitFor(() => seen.length > 0 && seen.at(-1) === undefined, { timeoutMs: 5000, what: 'the removal' });
    w.cancel();
    const count = seen.length;
    await s.ensurePath('/watched/c');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.length, count, 'a cancelled watch stays quiet');
  });

  test('watchData follows the data of a node', async () => {
    const s = await open();
    const seen: (string | undefined)[] = [];
    const w = s.watchData('/wd', (n) => seen.push(n?.data.toString()));
    await s.create('/wd', 'v1');
    await waitFor(() => seen.at(-1) === 'v1', { timeoutMs: 5000, what: 'v1' });
    await s.setData('/wd', 'v2');
    await waitFor(() => seen.at(-1) === 'v2', { timeoutMs: 5000, what: 'v2' });
    w.cancel();
    await s.remove('/wd');
  });
});

describe('ZkSession ephemerals and expiry', () => {
  test('createEphemeral refuses a node held by another session and updates one it holds', async () => {
    const a = await open();
    const b = await open();
    await a.ensurePath('/eph');
    await a.createEphemeral('/eph/x', 'a');
    await assert.rejects(b.createEphemeral('/eph/x', 'b'), (e: unknown) => e instanceof CoordinationError && e.zkCode === 'NODE_EXISTS' && e.message.includes(a.sessionId));
    await a.createEphemeral('/eph/x', 'a2');
    const node = await b.getData('/eph/x');
    assert.equal(node?.data.toString(), 'a2');
    assert.equal(node?.stat.ephemeralOwner, a.sessionId);
    assert.ok(a.ownsEphemeral(node.stat));
    assert.ok(!b.ownsEphemeral(node.stat));
  });

  test('an expired session is reported lost, replaced by a new one, and its watches work again', async () => {
    const s = await open(2000);
    const ev = events(s);
    const other = await open();
    await other.ensurePath('/exp');
    const seen: string[][] = [];
    s.watchChildren('/exp', (c) => seen.push(c ?? []));
    await s.createEphemeral('/exp/mine', 'x');
    await waitFor(() => seen.at(-1)?.includes('mine') === true, { timeoutMs: 5000, what: 'the watch saw the ephemeral' });
    const firstId = s.sessionId;
    await expireSession(zk.connectString, s.credentials, () => ev.some((e) => e.type === 'lost'));
    const lost = ev.find((e) => e.type === 'lost');
    // The server reports the expiry, unless the watchdog saw the session stop answering first (the twin held it).
    assert.ok(lost?.type === 'lost' && ['expired', 'watchdog'].includes(lost.reason) && lost.sessionId === firstId, JSON.stringify(lost));
    assert.equal((await other.getChildren('/exp'))?.includes('mine'), false, 'the ephemeral died with its session');
    await waitFor(() => ev.some((e) => e.type === 'established' && !e.first), { timeoutMs: 10_000, what: 'a new session' });
    assert.notEqual(s.sessionId, firstId);
    assert.ok(s.isAlive);
    await other.create('/exp/after');
    await waitFor(() => seen.at(-1)?.includes('after') === true, { timeoutMs: 5000, what: 'the re-armed watch saw a new child' });
  });

  test('a node left by an earlier session of the same process is taken over after a watchdog loss', async () => {
    const s = await open(2000);
    const ev = events(s);
    await s.ensurePath('/take');
    await s.createEphemeral('/take/over', 'old');
    const firstId = s.sessionId;
    zk.pause();
    try {
      await waitFor(() => ev.some((e) => e.type === 'lost'), { timeoutMs: 10_000, what: 'the watchdog to notice the frozen server' });
    } finally {
      zk.resume();
    }
    const lost = ev.find((e) => e.type === 'lost');
    assert.equal(lost?.type === 'lost' ? lost.reason : undefined, 'watchdog');
    await waitFor(() => ev.some((e) => e.type === 'established' && !e.first), { timeoutMs: 15_000, what: 'a new session' });
    // The server may not have expired the first session yet: its node is then still there, and ours to take over.
    await s.createEphemeral('/take/over', 'new');
    const node = await s.getData('/take/over');
    assert.equal(node?.data.toString(), 'new');
    assert.equal(node?.stat.ephemeralOwner, s.sessionId);
    assert.notEqual(s.sessionId, firstId);
  });

  test('an unreachable server fails open with an error naming it', async () => {
    const port = await freePort();
    const started = Date.now();
    await assert.rejects(ZkSession.open({ connect: `127.0.0.1:${port}`, sessionTimeoutMs: 4000, connectTimeoutMs: 800, logger }),
      (e: unknown) => e instanceof CoordinationError && e.message.includes(`127.0.0.1:${port}`) && e.message.includes('800 ms'));
    assert.ok(Date.now() - started < 5000);
  });
});
