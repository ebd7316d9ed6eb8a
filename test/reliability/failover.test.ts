/**
 * T9: master/slave failover with real processes on a real ZooKeeper, sync and async replication. Two nodes share
 * brokerId 0. An SDK producer (ZooKeeper routing) sends continuously, about 1k msg/s. Each iteration SIGKILLs the
 * master at a random moment, promotes the slave (`POST /api/ha/promote`), and restarts the killed node as a slave
 * of the new master: roles alternate ("chase the leader").
 *
 * Pass:
 * - sync: every acknowledged message is in the final master's log, at the partition and offset its ack gave
 *   (lost 0, no offset reused);
 * - async: the acknowledged messages missing are at most the replication lag at the kills (the bytes the killed
 *   master held that the promoted slave did not), reported; every surviving acknowledged message is at its acked
 *   offset;
 * - both: a rejoining node cuts its divergent tail and logs the range; afterwards it holds a byte-identical copy of
 *   the new master's log.
 * A slave whose recovery cut data is refused promotion while its master is down (the NATS lesson).
 *
 * Replay: REL_SEED=<seed> [REL_FAILOVERS=<n>] node --import tsx --test test/reliability/failover.test.ts
 */
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createClient, type MetaqClient } from '../../sdk/client/client.js';
import type { SendResult } from '../../sdk/message.js';
import { encodeStats } from '../../sdk/protocol/encode.js';
import { decodeMessageSet, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import { killSpawnedBrokers, spawnBroker, type BrokerProcess } from '../harness/broker-process.js';
import { bodyText, RawClient } from '../harness/raw-client.js';
import { tempDir, uniqueName } from '../harness/temp-dir.js';
import { waitFor } from '../harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper.js';
import { seededRandom, seedFrom } from './history.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const PARTITIONS = 2;
/** Sends in flight at once; with the pause between rounds this is about 1k msg/s. */
const DEPTH = 4;
const ROUND_PAUSE_MS = 4;
type Mode = 'sync' | 'async';

interface Node {
  readonly name: string;
  readonly dir: string;
  /** Its slave number whenever it runs as a slave. */
  readonly slaveId: number;
  proc: BrokerProcess | undefined;
}

interface Ack {
  readonly value: string;
  readonly partition: number;
  readonly offset: number;
  readonly at: number;
}

/** Every record of a partition directory, read from its segment files: offset → payload. */
async function readPartition(dataDir: string, topic: string, partition: number): Promise<Map<number, string>> {
  const dir = join(dataDir, `${topic}-${partition}`);
  const out = new Map<number, string>();
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.meta')).sort();
  for (const f of files) {
    const buf = await readFile(join(dir, f));
    const set = decodeMessageSet(buf, { baseOffset: Number(f.slice(0, 20)), topic, partition });
    for (const m of set.messages) out.set(m.offset, m.payload.toString());
  }
  return out;
}

/** The end offset of a partition directory (first segment start + bytes of all segments). */
async function dirEnd(dataDir: string, topic: string, partition: number): Promise<number> {
  const dir = join(dataDir, `${topic}-${partition}`);
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.meta')).sort();
  const lastFile = files.at(-1);
  if (lastFile === undefined) return 0;
  return Number(lastFile.slice(0, 20)) + (await readFile(join(dir, lastFile))).length;
}

async function statsText(port: number, item: string): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    const opaque = c.nextOpaque();
    return bodyText(await c.request(encodeStats({ item, opaque }), opaque));
  } finally {
    await c.close();
  }
}

/** `stats <item>` lines as key → rest of the line. */
async function stats(port: number, item: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of (await statsText(port, item)).split('\r\n')) {
    const i = line.indexOf(' ');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** The partition ends `stats offsets` reports (`<topic> part <p> min_offset <a> max_offset <b>`). */
async function partitionEnds(port: number, topic: string): Promise<number[]> {
  const ends = new Array<number>(PARTITIONS).fill(0);
  for (const line of (await statsText(port, 'offsets')).split('\r\n')) {
    const m = /^(\S+) part (\d+) min_offset \d+ max_offset (\d+)$/.exec(line);
    if (m !== null && m[1] === topic) ends[Number(m[2])] = Number(m[3]);
  }
  return ends;
}

/** The HTTP port from the "broker started" line (logged once registered in ZooKeeper). */
async function httpPort(proc: BrokerProcess): Promise<number> {
  const rec = await waitFor(() => proc.logRecords('broker started')[0], { timeoutMs: 20_000, what: 'the broker to log its start' });
  return Number(rec['httpPort']);
}

async function promote(proc: BrokerProcess): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${await httpPort(proc)}/api/ha/promote`, { method: 'POST' });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

describe('reliability/T9 master/slave failover', () => {
  let zk: ZooKeeperServer;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    zk = await startZooKeeper();
  });

  after(async () => {
    await killSpawnedBrokers();
    for (const c of cleanups) await c();
    await zk?.stop();
  });

  /** `--set` of a node: brokerId 0 for both, group commit, its slaveId when it is to run as a slave. */
  function nodeSet(root: string, topic: string, mode: Mode, slaveId: number | undefined): Record<string, string> {
    return {
      'zookeeper.zk.zkEnable': 'true', 'zookeeper.zk.zkConnect': zk.connectString, 'zookeeper.zk.zkRoot': root,
      'zookeeper.zk.zkSessionTimeoutMs': '4000', 'zookeeper.zk.zkSyncTimeMs': '0', 'system.brokerId': '0',
      'system.hostName': '127.0.0.1', 'system.unflushThreshold': '0',
      'system.slaveMaxDelayInMills': '50', 'system.syncReplication': String(mode === 'sync'),
      'system.sendToSlaveTimeoutInMills': '2000', [`topic=${topic}.numPartitions`]: String(PARTITIONS),
      ...(slaveId === undefined ? {} : { 'system.slaveId': String(slaveId) }),
    };
  }

  /** Until the slave has caught up with its master (compared its log, cut a divergent tail): promotable. */
  async function waitReplicating(slave: BrokerProcess): Promise<void> {
    await waitFor(async () => (await stats(slave.port, 'replication')).get('promotable') === 'true',
      { timeoutMs: 20_000, what: 'the slave to catch up with its master' });
  }

  async function run(mode: Mode): Promise<void> {
    const seed = seedFrom('REL_SEED');
    const failovers = Number(process.env.REL_FAILOVERS ?? 5);
    console.log(`T9 ${mode}: seed=${seed} failovers=${failovers} (replay: REL_SEED=${seed} REL_FAILOVERS=${failovers})`);
    const rng = seededRandom(seed);
    const root = `/${uniqueName(`t9-${mode}`)}`;
    const topic = uniqueName(`t9${mode}`);
    const dirA = await tempDir('metaq-t9-a-');
    const dirB = await tempDir('metaq-t9-b-');
    const recover = await tempDir('metaq-t9-recover-');
    cleanups.push(() => dirA.remove(), () => dirB.remove(), () => recover.remove());
    let master: Node = { name: 'A', dir: dirA.path, slaveId: 1, proc: undefined };
    let slave: Node = { name: 'B', dir: dirB.path, slaveId: 2, proc: undefined };
    master.proc = await spawnBroker({ dataDir: master.dir, set: nodeSet(root, topic, mode, undefined) });
    slave.proc = await spawnBroker({ dataDir: slave.dir, set: nodeSet(root, topic, mode, slave.slaveId) });
    await waitReplicating(slave.proc);

    const client: MetaqClient = await createClient({ zkConnect: zk.connectString, zkRoot: root, zkSessionTimeoutMs: 4000,
      recoverDir: recover.path, logger });
    const producer = client.producer();
    const acks: Ack[] = [];
    let failures = 0;
    let stopped = false;
    let seq = 0;
    const producing = (async () => {
      while (!stopped) {
        const round = await Promise.allSettled(Array.from({ length: DEPTH }, () => {
          const value = `${mode}-${seq++}`;
          return producer.send({ topic, value }).then((r: SendResult) => ({ r, value }));
        }));
        const at = performance.now();
        for (const o of round) {
          if (o.status === 'fulfilled') acks.push({ value: o.value.value, partition: o.value.r.partition.partition, offset: o.value.r.offset, at });
          else failures++;
        }
        await delay(ROUND_PAUSE_MS);
      }
    })();

    let lagAtKills = 0;
    /** Kill → first ack after it; the sync iterations that killed both nodes are kept apart. */
    const failoverMs: number[] = [];
    const bothDownMs: number[] = [];
    const divergent: Record<string, unknown>[] = [];
    try {
      await waitFor(() => acks.length >= 200, { timeoutMs: 20_000, what: 'the producer to get going' });
      for (let i = 0; i < failovers; i++) {
        await delay(rng.int(300, 1500));
        const killed = master;
        const promoted = slave;
        const killedProc = killed.proc!;
        // Every other kill comes while the slave is out of reach, so that the master holds records the slave lacks:
        // the divergent tail the killed node must cut when it rejoins. Async: the slave is frozen and the master
        // acknowledges on (the lag). Sync: the slave is killed too, and the master's puts it cannot forward are
        // answered 500 (frozen would not do: pushes wait in the frozen slave's socket buffer and are stored later).
        const apart = i % 2 === 0;
        if (apart && mode === 'async') promoted.proc!.kill('SIGSTOP');
        if (apart && mode === 'sync') {
          promoted.proc!.kill('SIGKILL');
          await promoted.proc!.exited;
        }
        if (apart) await delay(rng.int(200, 600));
        const tKill = performance.now();
        killedProc.kill('SIGKILL');
        await killedProc.exited;
        if (apart && mode === 'async') promoted.proc!.kill('SIGCONT');
        if (apart && mode === 'sync') {
          // Same port: the registration its killed run left names it, so this run waits for that session to expire.
          promoted.proc = await spawnBroker({ dataDir: promoted.dir, port: promoted.proc!.port,
            set: nodeSet(root, topic, mode, promoted.slaveId) });
          // Promotable once it knows its (dead) master does not answer: nothing to compare its log with.
          await waitReplicating(promoted.proc);
        }
        const res = await promote(promoted.proc!);
        assert.equal(res.status, 200, `promotion ${i + 1}: ${JSON.stringify(res.body)}`);
        // What the killed master had stored (its page cache survives a kill) against what the slave held.
        const ends = res.body['ends'] as Record<string, number>;
        for (let p = 0; p < PARTITIONS; p++) {
          lagAtKills += Math.max(0, await dirEnd(killed.dir, topic, p) - (ends[`${topic}-${p}`] ?? 0));
        }
        killed.proc = await spawnBroker({ dataDir: killed.dir, set: nodeSet(root, topic, mode, killed.slaveId) });
        await waitReplicating(killed.proc);
        master = promoted;
        slave = killed;
        const acksBefore = acks.length;
        await waitFor(() => acks.length > acksBefore + 20, { timeoutMs: 30_000, what: `acks after failover ${i + 1}` });
        const firstAfter = acks.find((a) => a.at > tKill);
        (apart && mode === 'sync' ? bothDownMs : failoverMs).push(Math.round(firstAfter!.at - tKill));
        divergent.push(...killed.proc.logRecords().filter((r) => String(r['msg']).includes('divergent')));
      }
    } finally {
      stopped = true;
      await producing;
      await client.close();
    }

    // The slave holds a byte-identical copy once caught up.
    const masterEnds = await partitionEnds(master.proc!.port, topic);
    await waitFor(async () => (await partitionEnds(slave.proc!.port, topic)).every((e, p) => e === masterEnds[p]),
      { timeoutMs: 30_000, what: 'the last slave to catch up' });
    const finalLog: Map<number, string>[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const m = await readPartition(master.dir, topic, p);
      const s = await readPartition(slave.dir, topic, p);
      assert.deepEqual([...s], [...m], `partition ${p}: the slave's records equal the master's`);
      finalLog.push(m);
    }

    let lost = 0;
    let lostBytes = 0;
    let moved = 0;
    const present = new Set<string>();
    for (const log of finalLog) for (const v of log.values()) present.add(v);
    for (const a of acks) {
      const at = finalLog[a.partition]!.get(a.offset);
      if (at === a.value) continue;
      if (present.has(a.value)) moved++;
      else { lost++; lostBytes += RECORD_HEADER_SIZE + Buffer.byteLength(a.value); }
    }
    const sorted = [...failoverMs].sort((x, y) => x - y);
    const reused = acks.filter((a) => {
      const at = finalLog[a.partition]!.get(a.offset);
      return at !== undefined && at !== a.value;
    }).length;
    console.log(`T9 ${mode}: iterations=${failovers} acked=${acks.length} failed_sends=${failures} lost=${lost} ` +
      `(${lostBytes} bytes) lag_at_kills=${lagAtKills} bytes moved=${moved} acked_offsets_reused=${reused} ` +
      `divergent_cut_logged=${divergent.length} failover_ms p50=${sorted[Math.floor(sorted.length / 2)]} ` +
      `max=${sorted.at(-1)}${bothDownMs.length > 0 ? ` both_nodes_down_ms=${bothDownMs.join(',')}` : ''}`);
    assert.equal(moved, 0, 'an acknowledged message is never found at another offset than its ack gave');
    if (mode === 'sync') {
      assert.equal(lost, 0, 'sync replication loses no acknowledged message');
      assert.equal(reused, 0, 'sync: no acknowledged offset holds another message');
    } else {
      assert.ok(lostBytes <= lagAtKills, `async: lost ${lostBytes} bytes > lag at the kills ${lagAtKills}`);
    }
    assert.ok(divergent.length > 0, 'the old masters cut (and logged) the tails their slave never stored');
  }

  it('sync replication: no acknowledged message is lost across 5 failovers with alternating roles', async () => {
    await run('sync');
  });

  it('async replication: lost messages are bounded by the replication lag at the kills', async () => {
    await run('async');
  });

  it('refuses to promote a slave whose recovery cut data while its master is down', async () => {
    const root = `/${uniqueName('t9-nats')}`;
    const topic = uniqueName('t9nats');
    const dirA = await tempDir('metaq-t9n-a-');
    const dirB = await tempDir('metaq-t9n-b-');
    cleanups.push(() => dirA.remove(), () => dirB.remove());
    const master = await spawnBroker({ dataDir: dirA.path, set: nodeSet(root, topic, 'async', undefined) });
    let slave = await spawnBroker({ dataDir: dirB.path, set: nodeSet(root, topic, 'async', 1) });
    await waitReplicating(slave);
    const c = await RawClient.connect(master.port);
    for (let i = 0; i < 50; i++) {
      const r = await c.put(topic, i % PARTITIONS, Buffer.from(`m${i}`));
      assert.equal(r.type === 'result' ? r.code : 0, 200, bodyText(r));
    }
    await c.close();
    const ends = await partitionEnds(master.port, topic);
    await waitFor(async () => (await partitionEnds(slave.port, topic)).every((e, p) => e === ends[p]),
      { timeoutMs: 20_000, what: 'the slave to catch up' });
    // The slave dies with a torn record at its tail; so does the master.
    slave.kill('SIGKILL');
    await slave.exited;
    master.kill('SIGKILL');
    await master.exited;
    const seg = join(dirB.path, `${topic}-0`, (await readdir(join(dirB.path, `${topic}-0`))).filter((f) => f.endsWith('.meta')).sort().at(-1)!);
    await appendFile(seg, Buffer.from([0, 0, 0, 40, 1, 2, 3]));
    // Same port: its registration left by the killed run names it, so the new run waits for that session to expire.
    slave = await spawnBroker({ dataDir: dirB.path, port: slave.port, set: nodeSet(root, topic, 'async', 1) });
    const refused = await promote(slave);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(String(refused.body['error']), /recovery cut/);
    assert.equal((await stats(slave.port, 'replication')).get('promotable'), 'false');
    // Its master back, it catches up and may be promoted again.
    const back = await spawnBroker({ dataDir: dirA.path, set: nodeSet(root, topic, 'async', undefined) });
    await waitFor(async () => (await stats(slave.port, 'replication')).get('promotable') === 'true',
      { timeoutMs: 20_000, what: 'the slave to catch up and become promotable' });
    await back.stop();
    await slave.stop();
  });
});
