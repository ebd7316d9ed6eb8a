/**
 * Broker transactions over the wire (MetaQ's `transaction` command and puts with a transaction key): local and XA,
 * protocol errors, timeouts, connection loss, restart; and SIGKILLed broker processes (prepared branches survive,
 * a stream of commits stays all-or-nothing).
 *
 * Replay the seeded kill test: TX_SEED=<seed> [TX_CYCLES=<n>] node --import tsx --test test/broker-transactions.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Response } from '../sdk/protocol/commands.js';
import { decodeMessageSet, type DecodedMessage } from '../sdk/protocol/record.js';
import { seededRandom, seedFrom } from './reliability/history.js';
import { killSpawnedBrokers, spawnBroker, type BrokerProcess } from './harness/broker-process.js';
import { RawClient, bodyText } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const SET = { 'system.numPartitions': '4', 'system.longPollTimeoutMs': '0', 'system.maxTxTimeoutInSeconds': '1' };

let xidSeq = 0;
function xid(uq: string): string {
  xidSeq++;
  return `XID:1:${Buffer.from(`gtrid-${process.pid}-${xidSeq}`).toString('hex')}:0a0b:${uq}`;
}

/** Every message of a partition, read with get from offset 0. */
async function readAll(c: RawClient, topic: string, partition: number): Promise<DecodedMessage[]> {
  const out: DecodedMessage[] = [];
  let offset = 0;
  for (;;) {
    const r: Response = await c.get(topic, 'g', partition, offset);
    if (r.type === 'result') {
      assert.equal(r.code, 404, bodyText(r));
      return out;
    }
    const set = decodeMessageSet(r.body, { baseOffset: offset });
    out.push(...set.messages);
    offset += set.bytesConsumed;
  }
}

function statValue(stats: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)`, 'm').exec(stats);
  assert.ok(m, `no ${key} in stats`);
  return Number(m[1]);
}

async function ok(p: Promise<Response | null>): Promise<string> {
  const r = await p;
  assert.ok(r !== null);
  assert.equal(r.type === 'result' ? r.code : 0, 200, bodyText(r));
  return bodyText(r);
}

async function fails(p: Promise<Response | null>): Promise<string> {
  const r = await p;
  assert.ok(r !== null);
  assert.equal(r.type === 'result' ? r.code : 0, 500, bodyText(r));
  return bodyText(r);
}

describe('broker transactions over the wire', () => {
  let tb: TestBroker;
  let c: RawClient;

  before(async () => {
    tb = await startTestBroker(SET);
    c = await RawClient.connect(tb.port);
  });
  after(async () => {
    await c.close();
    await tb.dispose();
  });

  it('makes a local transaction visible only at commit, each partition as one contiguous batch', async () => {
    const topic = uniqueName('tx-local');
    const other = await RawClient.connect(tb.port);
    const key = 'TX:s1:1';
    assert.equal(await ok(c.transaction({ transactionKey: key, transactionType: 'BEGIN' })), '');
    const answers: string[] = [];
    for (const [p, text] of [[0, 'a0'], [1, 'b0'], [0, 'a1'], [2, 'c0'], [0, 'a2']] as const) {
      answers.push(await ok(c.put(topic, p, text, { txKey: key })));
      // Another producer writes to partition 0 between the transaction's puts.
      if (p === 0) assert.equal((await other.put(topic, 0, `plain-${text}`)).code, 200);
    }
    for (const a of answers) assert.match(a, /^\d+ [0-2] -1$/);
    assert.deepEqual((await readAll(c, topic, 0)).map((m) => m.payload.toString()), ['plain-a0', 'plain-a1', 'plain-a2']);
    assert.deepEqual(await readAll(c, topic, 1), []);

    assert.equal(await ok(c.transaction({ transactionKey: key, transactionType: 'COMMIT_ONE_PHASE' })), '');
    const p0 = await readAll(c, topic, 0);
    assert.deepEqual(p0.map((m) => m.payload.toString()), ['plain-a0', 'plain-a1', 'plain-a2', 'a0', 'a1', 'a2']);
    assert.deepEqual((await readAll(c, topic, 1)).map((m) => m.payload.toString()), ['b0']);
    assert.deepEqual((await readAll(c, topic, 2)).map((m) => m.payload.toString()), ['c0']);
    // The ids stored are the ids the puts answered.
    const stored = [...p0.slice(3), ...(await readAll(c, topic, 1)), ...(await readAll(c, topic, 2))].map((m) => m.id.toString());
    const answered = answers.map((a) => a.split(' ')[0]!);
    assert.deepEqual([...stored].sort(), [...answered].sort());
    await other.close();
  });

  it('leaves nothing behind after a rollback', async () => {
    const topic = uniqueName('tx-rollback');
    const key = 'TX:s1:2';
    await ok(c.transaction({ transactionKey: key, transactionType: 'BEGIN' }));
    await ok(c.put(topic, 0, 'x', { txKey: key }));
    await ok(c.transaction({ transactionKey: key, transactionType: 'ROLLBACK' }));
    assert.deepEqual(await readAll(c, topic, 0), []);
    const again = await fails(c.transaction({ transactionKey: key, transactionType: 'COMMIT_ONE_PHASE' }));
    assert.equal(again, `Local transaction '${key}' has not been started.`);
  });

  it('rolls back the local transactions of a connection that closes', async () => {
    const topic = uniqueName('tx-close');
    const before = statValue(await c.stats(), 'tx_rollback');
    const d = await RawClient.connect(tb.port);
    await ok(d.transaction({ transactionKey: 'TX:s2:1', transactionType: 'BEGIN' }));
    await ok(d.put(topic, 1, 'lost', { txKey: 'TX:s2:1' }));
    d.socket.destroy();
    await waitFor(async () => statValue(await c.stats(), 'tx_rollback') === before + 1, { what: 'the rollback on close' });
    assert.deepEqual(await readAll(c, topic, 1), []);
    // Local transactions are the connection's own: another connection cannot commit it.
    const e = await RawClient.connect(tb.port);
    assert.match(await fails(e.transaction({ transactionKey: 'TX:s2:1', transactionType: 'COMMIT_ONE_PHASE' })),
      /has not been started/);
    await e.close();
  });

  it('rolls back a transaction whose timeout (capped by maxTxTimeoutInSeconds) expires', async () => {
    const topic = uniqueName('tx-timeout');
    const key = 'TX:s1:3';
    const before = statValue(await c.stats(), 'tx_rollback');
    // The client asks for 100 s; the broker caps it at 1 s.
    await ok(c.transaction({ transactionKey: key, transactionType: 'BEGIN', timeout: 100 }));
    await ok(c.put(topic, 0, 'late', { txKey: key }));
    await waitFor(async () => statValue(await c.stats(), 'tx_rollback') === before + 1, { what: 'the timeout', timeoutMs: 5000 });
    assert.match(await fails(c.transaction({ transactionKey: key, transactionType: 'COMMIT_ONE_PHASE' })),
      /^XAException:code=106,msg=/);
    assert.deepEqual(await readAll(c, topic, 0), []);
  });

  it('commits an XA branch in one phase', async () => {
    const topic = uniqueName('xa-1pc');
    const k = xid('uq1');
    await ok(c.transaction({ transactionKey: k, transactionType: 'BEGIN', uniqueQualifier: 'uq1', timeout: 0 }));
    await ok(c.put(topic, 3, 'one', { txKey: k }));
    assert.equal(await c.transaction({ transactionKey: k, transactionType: 'END' }), null);
    await ok(c.transaction({ transactionKey: k, transactionType: 'COMMIT_ONE_PHASE' }));
    assert.deepEqual((await readAll(c, topic, 3)).map((m) => m.payload.toString()), ['one']);
  });

  it('commits an XA branch in two phases, listed by recover while prepared', async () => {
    const topic = uniqueName('xa-2pc');
    const k = xid('uq2');
    await ok(c.transaction({ transactionKey: k, transactionType: 'BEGIN', uniqueQualifier: 'uq2' }));
    await ok(c.put(topic, 0, 'm1', { txKey: k }));
    await ok(c.put(topic, 1, 'm2', { txKey: k }));
    await c.transaction({ transactionKey: k, transactionType: 'END' });
    assert.equal(await ok(c.transaction({ transactionKey: k, transactionType: 'PREPARE' })), '0');
    assert.deepEqual((await ok(c.transaction({ transactionKey: k, transactionType: 'RECOVER', uniqueQualifier: 'uq2' })))
      .split('\r\n'), [k]);
    // MetaQ's client sends RECOVER without a transaction: the key `null`.
    assert.deepEqual((await ok(c.transaction({ transactionKey: null, transactionType: 'RECOVER', uniqueQualifier: 'uq2' })))
      .split('\r\n'), [k]);
    assert.deepEqual(await readAll(c, topic, 0), []);
    await ok(c.transaction({ transactionKey: k, transactionType: 'COMMIT_TWO_PHASE' }));
    assert.deepEqual((await readAll(c, topic, 0)).map((m) => m.payload.toString()), ['m1']);
    assert.deepEqual((await readAll(c, topic, 1)).map((m) => m.payload.toString()), ['m2']);
    assert.equal(await ok(c.transaction({ transactionKey: k, transactionType: 'RECOVER', uniqueQualifier: 'uq2' })), '');
  });

  it('recovers only the prepared branches of the asking unique qualifier, and rolls them back', async () => {
    const topic = uniqueName('xa-recover');
    const [a1, a2, b1, a3] = [xid('qa'), xid('qa'), xid('qb'), xid('qa')];
    for (const k of [a1, a2, b1, a3]) {
      await ok(c.transaction({ transactionKey: k, transactionType: 'BEGIN', uniqueQualifier: k.split(':')[4]! }));
      await ok(c.put(topic, 0, k, { txKey: k }));
    }
    for (const k of [a1, a2, b1]) assert.equal(await ok(c.transaction({ transactionKey: k, transactionType: 'PREPARE' })), '0');
    // a3 is active, not prepared: not listed.
    assert.deepEqual((await ok(c.transaction({ transactionKey: a1, transactionType: 'RECOVER', uniqueQualifier: 'qa' })))
      .split('\r\n'), [a1, a2]);
    assert.deepEqual((await ok(c.transaction({ transactionKey: b1, transactionType: 'RECOVER', uniqueQualifier: 'qb' })))
      .split('\r\n'), [b1]);
    for (const k of [a1, a2, b1, a3]) await ok(c.transaction({ transactionKey: k, transactionType: 'ROLLBACK' }));
    assert.equal(await ok(c.transaction({ transactionKey: a1, transactionType: 'RECOVER', uniqueQualifier: 'qa' })), '');
    assert.deepEqual(await readAll(c, topic, 0), []);
  });

  it('accepts FORGET of an XA key and refuses it for a local key', async () => {
    await ok(c.transaction({ transactionKey: xid('qf'), transactionType: 'FORGET' }));
    assert.equal(await fails(c.transaction({ transactionKey: 'TX:s1:9', transactionType: 'FORGET' })),
      'XAException:code=-4,msg=TX:s1:9 is not a valid xid');
  });

  it('answers protocol errors with MetaQ XAException codes', async () => {
    const topic = uniqueName('xa-errors');
    const unknown = xid('qe');
    assert.equal(await fails(c.transaction({ transactionKey: unknown, transactionType: 'COMMIT_TWO_PHASE' })),
      `XAException:code=-4,msg=XA transaction '${unknown}' has not been started.`);

    const k = xid('qe');
    await ok(c.transaction({ transactionKey: k, transactionType: 'BEGIN', uniqueQualifier: 'qe' }));
    assert.match(await fails(c.put(topic, -1, 'p', { txKey: k })), /^Invalid partition for transaction command:-1$/);
    await ok(c.put(topic, 0, 'p', { txKey: k }));
    assert.match(await fails(c.transaction({ transactionKey: k, transactionType: 'COMMIT_TWO_PHASE' })),
      /^XAException:code=-6,msg=Cannot do 2 phase commit/);
    await c.transaction({ transactionKey: k, transactionType: 'END' });
    assert.match(await fails(c.put(topic, 0, 'after end', { txKey: k })), /^XAException:code=-6,/);
    assert.equal(await ok(c.transaction({ transactionKey: k, transactionType: 'PREPARE' })), '0');
    assert.equal(await fails(c.transaction({ transactionKey: k, transactionType: 'PREPARE' })),
      'XAException:code=-6,msg=Cannot call prepare now.');
    await ok(c.transaction({ transactionKey: k, transactionType: 'ROLLBACK' }));

    const empty = xid('qe');
    await ok(c.transaction({ transactionKey: empty, transactionType: 'BEGIN', uniqueQualifier: 'qe' }));
    assert.equal(await ok(c.transaction({ transactionKey: empty, transactionType: 'PREPARE' })), '3');

    await ok(c.transaction({ transactionKey: 'TX:s1:7', transactionType: 'BEGIN' }));
    assert.equal(await fails(c.transaction({ transactionKey: 'TX:s1:7', transactionType: 'PREPARE' })),
      'XAException:code=-3,msg=Prepare not implemented on Local Transactions.');
    assert.match(await fails(c.put(topic, 0, 'x', { txKey: 'TX:s1:8' })), /^Local transaction 'TX:s1:8' has not been started\.$/);
    await ok(c.transaction({ transactionKey: 'TX:s1:7', transactionType: 'ROLLBACK' }));
    assert.deepEqual(await readAll(c, topic, 0), []);
  });

  it('counts transactions in stats', async () => {
    const s0 = await c.stats();
    const k = xid('qs');
    await ok(c.transaction({ transactionKey: 'TX:s1:20', transactionType: 'BEGIN' }));
    await ok(c.transaction({ transactionKey: 'TX:s1:20', transactionType: 'COMMIT_ONE_PHASE' }));
    await ok(c.transaction({ transactionKey: k, transactionType: 'BEGIN', uniqueQualifier: 'qs' }));
    await ok(c.transaction({ transactionKey: k, transactionType: 'ROLLBACK' }));
    const s1 = await c.stats();
    assert.equal(statValue(s1, 'tx_begin') - statValue(s0, 'tx_begin'), 2);
    assert.equal(statValue(s1, 'tx_xa_begin') - statValue(s0, 'tx_xa_begin'), 1);
    assert.equal(statValue(s1, 'tx_commit') - statValue(s0, 'tx_commit'), 1);
    assert.equal(statValue(s1, 'tx_rollback') - statValue(s0, 'tx_rollback'), 1);
  });

  it('keeps a prepared XA branch across a restart and rolls back an unprepared one', async () => {
    const topic = uniqueName('xa-restart');
    const [prepared, active] = [xid('qr'), xid('qr')];
    for (const k of [prepared, active]) {
      await ok(c.transaction({ transactionKey: k, transactionType: 'BEGIN', uniqueQualifier: 'qr' }));
      await ok(c.put(topic, 2, k === prepared ? 'kept' : 'dropped', { txKey: k }));
    }
    await ok(c.transaction({ transactionKey: prepared, transactionType: 'PREPARE' }));
    await c.close();
    tb = await tb.restart();
    c = await RawClient.connect(tb.port);
    assert.equal(await ok(c.transaction({ transactionKey: prepared, transactionType: 'RECOVER', uniqueQualifier: 'qr' })),
      prepared);
    assert.match(await fails(c.transaction({ transactionKey: active, transactionType: 'COMMIT_ONE_PHASE' })), /code=-4/);
    await ok(c.transaction({ transactionKey: prepared, transactionType: 'COMMIT_TWO_PHASE' }));
    assert.deepEqual((await readAll(c, topic, 2)).map((m) => m.payload.toString()), ['kept']);
  });
});

describe('broker transactions across SIGKILL (real broker processes)', () => {
  const spawnSet = { 'system.numPartitions': '4', 'system.longPollTimeoutMs': '0' };
  after(killSpawnedBrokers);

  it('brings prepared XA branches back after kill -9; committed after the restart, each message appears once', async () => {
    const dir = await tempDir('metaq-tx-kill-');
    const topic = uniqueName('xa-kill');
    try {
      let b = await spawnBroker({ dataDir: dir.path, set: spawnSet });
      let c = await RawClient.connect(b.port);
      const keys = [xid('qk'), xid('qk'), xid('qk')];
      for (const [i, k] of keys.entries()) {
        await ok(c.transaction({ transactionKey: k, transactionType: 'BEGIN', uniqueQualifier: 'qk' }));
        for (let j = 0; j < 3; j++) await ok(c.put(topic, (i + j) % 4, `${i}-${j}`, { txKey: k }));
        await c.transaction({ transactionKey: k, transactionType: 'END' });
        assert.equal(await ok(c.transaction({ transactionKey: k, transactionType: 'PREPARE' })), '0');
      }
      b.kill('SIGKILL');
      await b.exited;
      b = await spawnBroker({ dataDir: dir.path, set: spawnSet });
      c = await RawClient.connect(b.port);
      assert.deepEqual((await ok(c.transaction({ transactionKey: keys[0]!, transactionType: 'RECOVER',
        uniqueQualifier: 'qk' }))).split('\r\n'), keys);
      for (const k of keys) await ok(c.transaction({ transactionKey: k, transactionType: 'COMMIT_TWO_PHASE' }));
      // Once more after a kill: the commits must not be applied twice.
      b.kill('SIGKILL');
      await b.exited;
      b = await spawnBroker({ dataDir: dir.path, set: spawnSet });
      c = await RawClient.connect(b.port);
      const seen: string[] = [];
      for (let p = 0; p < 4; p++) seen.push(...(await readAll(c, topic, p)).map((m) => m.payload.toString()));
      assert.deepEqual(seen.sort(), ['0-0', '0-1', '0-2', '1-0', '1-1', '1-2', '2-0', '2-1', '2-2']);
      assert.equal(await ok(c.transaction({ transactionKey: keys[0]!, transactionType: 'RECOVER', uniqueQualifier: 'qk' })), '');
      await c.close();
      await b.stop();
    } finally {
      await killSpawnedBrokers();
      await dir.remove();
    }
  });

  it('keeps every transaction all-or-nothing when the broker is SIGKILLed during a stream of commits', async () => {
    const seed = seedFrom('TX_SEED');
    const cycles = Number(process.env.TX_CYCLES ?? 3);
    const rnd = seededRandom(seed);
    console.log(`tx kill test: seed ${seed} (replay with TX_SEED=${seed}), ${cycles} cycles`);
    const dir = await tempDir('metaq-tx-stream-');
    const topic = uniqueName('tx-stream');
    /** Per transaction: message count, and whether its commit was acknowledged. */
    const txs = new Map<string, { size: number; acked: boolean }>();
    let completedAtRecovery = 0;
    try {
      for (let cycle = 0; cycle <= cycles; cycle++) {
        const b: BrokerProcess = await spawnBroker({ dataDir: dir.path, set: spawnSet });
        for (const r of b.logRecords('transactions recovered')) completedAtRecovery += Number(r['committedCompleted'] ?? 0);
        await checkAllOrNothing(b.port, topic, txs);
        if (cycle === cycles) { await b.stop(); break; }
        const runFor = rnd.int(300, 1500);
        const workers = [0, 1, 2, 3].map((w) => streamCommits(b.port, topic, `c${cycle}w${w}`, rnd.int(1, 2 ** 30), txs));
        const deadline = Date.now() + runFor;
        await waitFor(() => Date.now() >= deadline, { timeoutMs: runFor + 1000, intervalMs: 10 });
        b.kill('SIGKILL');
        await b.exited;
        await Promise.all(workers);
      }
      const acked = [...txs.values()].filter((t) => t.acked).length;
      console.log(`tx kill test: ${txs.size} transactions begun, ${acked} commits acknowledged, ` +
        `${completedAtRecovery} journalled commits completed at recovery; all-or-nothing held`);
      assert.ok(acked > 0, 'no commit was acknowledged: the test did not exercise anything');
    } finally {
      await killSpawnedBrokers();
      await dir.remove();
    }
  });
});

/** One connection committing transactions of 1-5 messages over random partitions until the broker dies. */
async function streamCommits(port: number, topic: string, name: string, seed: number,
  txs: Map<string, { size: number; acked: boolean }>): Promise<void> {
  const rnd = seededRandom(seed);
  let c: RawClient;
  try { c = await RawClient.connect(port); } catch { return; }
  try {
    for (let n = 1; ; n++) {
      const key = `TX:${name}:${n}`;
      const size = rnd.int(1, 5);
      const entry = { size, acked: false };
      txs.set(key, entry);
      await ok(c.transaction({ transactionKey: key, transactionType: 'BEGIN' }));
      for (let i = 0; i < size; i++) await ok(c.put(topic, rnd.int(0, 3), `${key}|${i}|${size}`, { txKey: key }));
      await ok(c.transaction({ transactionKey: key, transactionType: 'COMMIT_ONE_PHASE' }));
      entry.acked = true;
    }
  } catch {
    // The broker was killed.
  } finally {
    c.socket.destroy();
  }
}

/** Reads every partition: each transaction is absent or whole (once each, contiguous per partition); acked ones whole. */
async function checkAllOrNothing(port: number, topic: string, txs: Map<string, { size: number; acked: boolean }>):
Promise<void> {
  const c = await RawClient.connect(port);
  const found = new Map<string, Set<number>>();
  for (let p = 0; p < 4; p++) {
    const msgs = await readAll(c, topic, p);
    const closed = new Set<string>();
    let current = '';
    for (const m of msgs) {
      const [key, index] = m.payload.toString().split('|') as [string, string, string];
      if (key !== current) {
        assert.ok(!closed.has(key), `${key}: its records in partition ${p} are not contiguous`);
        if (current !== '') closed.add(current);
        current = key;
      }
      let set = found.get(key);
      if (set === undefined) { set = new Set(); found.set(key, set); }
      assert.ok(!set.has(Number(index)), `${key} message ${index} stored twice`);
      set.add(Number(index));
    }
  }
  for (const [key, set] of found) {
    const tx = txs.get(key);
    assert.ok(tx !== undefined, `${key} was never sent`);
    assert.equal(set.size, tx.size, `${key}: ${set.size} of its ${tx.size} messages stored`);
  }
  for (const [key, tx] of txs) if (tx.acked) assert.ok(found.has(key), `${key}: acknowledged commit lost`);
  await c.close();
}
