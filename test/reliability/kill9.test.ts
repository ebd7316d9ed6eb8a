/**
 * T1: kill -9 during produce, group commit (the embedded default). Each cycle starts a broker process on the same
 * data dir, reads every partition back from offset 0 and checks it against the producers' history, then produces
 * for a random 200-1500 ms from 4 connections and SIGKILLs the broker. After the last cycle the broker is stopped
 * gracefully and the store must pass `verifyDataDir`.
 *
 * Pass: every acked message present exactly once, whole, where its ack said; no phantom; offsets strictly
 * increasing; unacknowledged messages may be present or absent but whole, and once read they must stay.
 * (A kill keeps the page cache, so this cannot tell group commit from interval flush: T2 does that.)
 *
 * Replay: REL_SEED=<seed> [REL_CYCLES=<n>] node --import tsx --test test/reliability/kill9.test.ts
 */
import assert from 'node:assert/strict';
import { readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { verifyDataDir } from '../../broker/store/verify.js';
import { CorruptRecordError } from '../../sdk/errors.js';
import { parsePutResult } from '../../sdk/protocol/message-id.js';
import { decodeMessageSet } from '../../sdk/protocol/record.js';
import { killSpawnedBrokers, spawnBroker, type BrokerProcess } from '../harness/broker-process.js';
import { RawClient } from '../harness/raw-client.js';
import { tempDir, uniqueName } from '../harness/temp-dir.js';
import { waitFor } from '../harness/wait-for.js';
import {
  checkFailures, checkReadBack, History, makePayload, messageKey, seededRandom, seedFrom,
  type CheckReport, type ReadRecord,
} from './history.js';

const PARTITIONS = 4;
const PRODUCERS = 4;
const PAYLOAD_BYTES = 1024;
/** Total produce rate cap (msg/s) and per-connection in-flight window: load stays bounded on 2 cores. */
const RATE = 2000;
const WINDOW = 16;
const FETCH_BYTES = 1024 * 1024;
/** Brokers here answer a get at the end of the log at once: the read-back needs no long poll. */
const BROKER_SET = { 'system.longPollTimeoutMs': '0' } as const;

describe('reliability/T1 kill -9 during produce (group commit)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    await killSpawnedBrokers();
    for (const c of cleanups) await c();
  });

  it('keeps every acknowledged message, whole and exactly once, across repeated kill -9', async () => {
    const seed = seedFrom('REL_SEED');
    const cycles = Number(process.env.REL_CYCLES ?? 20);
    console.log(`T1 kill9: seed=${seed} cycles=${cycles} (replay: REL_SEED=${seed} REL_CYCLES=${cycles})`);
    const rng = seededRandom(seed);
    const dir = await tempDir('metaq-kill9-');
    cleanups.push(() => dir.remove());
    const topic = uniqueName('k9');
    const history = new History();
    const restartMs: number[] = [];
    let truncatedBytes = 0;
    let cuts = 0;
    let last: CheckReport | undefined;
    const t0 = performance.now();

    for (let cycle = 0; cycle <= cycles; cycle++) {
      const broker = await spawnBroker({ dataDir: dir.path, set: BROKER_SET });
      if (cycle > 0) restartMs.push(broker.startMs);
      for (const cut of broker.logRecords('recovery cut bytes from the log')) {
        cuts++;
        truncatedBytes += typeof cut['bytes'] === 'number' ? cut['bytes'] : 0;
      }
      last = await checkBroker(broker, topic, history, `after cycle ${cycle}`);
      if (cycle === cycles) {
        const exit = await broker.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `graceful stop failed:\n${broker.logs().slice(-3000)}`);
        break;
      }
      await produceThenKill(broker, topic, cycle, rng.int(200, 1500), history);
    }

    const verify = await verifyDataDir(dir.path);
    assert.ok(verify.ok, `verify found problems: ${JSON.stringify(verify.problems.slice(0, 5))}`);
    const control = await cutTailAndCheck(dir.path, topic, history);
    assert.ok(control.lost >= 1, `control: cutting 3000 bytes off a segment went unnoticed: ${JSON.stringify(control)}`);
    restartMs.sort((a, b) => a - b);
    const r = last!;
    console.log(`T1 kill9: seed=${seed} cycles=${cycles} acked=${r.acked} lost=${r.lost} corrupt=${r.corrupt} ` +
      `dupes=${r.duplicates} phantom=${r.phantom} misplaced=${r.misplaced} disorder=${r.disorder} ` +
      `indeterminate present/absent=${r.indeterminatePresent}/${r.indeterminateAbsent} failed-puts=${history.failed.size} ` +
      `recovery p50/max=${pct(restartMs, 0.5)}/${pct(restartMs, 1)} ms truncated=${truncatedBytes} B in ${cuts} cuts ` +
      `verified records=${verify.records} control(cut 3000 B) lost=${control.lost} elapsed=${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

  it('checker self-test: a removed, damaged, repeated or unknown record is reported', () => {
    const history = new History();
    const records: ReadRecord[] = [];
    for (let seq = 0; seq < 10; seq++) {
      const key = messageKey(7, seq);
      history.sent(key);
      history.ack(key, { id: BigInt(100 + seq), partition: 0, offset: seq * 1044 });
      records.push({ partition: 0, offset: seq * 1044, id: BigInt(100 + seq), payload: makePayload(7, seq, PAYLOAD_BYTES) });
    }
    assert.equal(checkFailures(checkReadBack(history, records, 0, true)), 0);

    const removed = checkReadBack(history, records.filter((_, i) => i !== 4), 0, true);
    assert.equal(removed.lost, 1);
    assert.equal(checkFailures(removed), 1);

    const damaged = records.map((r, i) => (i === 2 ? { ...r, payload: flipByte(r.payload, 500) } : r));
    const c = checkReadBack(history, damaged, 0, true);
    assert.deepEqual([c.corrupt, c.lost], [1, 1]);

    const repeated = [...records, { ...records[3]!, offset: 10 * 1044, id: 999n }];
    assert.equal(checkReadBack(history, repeated, 0, true).duplicates, 1);

    const unknown = [...records, { partition: 0, offset: 10 * 1044, id: 998n, payload: makePayload(8, 0, PAYLOAD_BYTES) }];
    assert.equal(checkReadBack(history, unknown, 0, true).phantom, 1);

    const moved = records.map((r, i) => (i === 5 ? { ...r, id: 555n } : r));
    assert.equal(checkReadBack(history, moved, 0, true).misplaced, 1);
  });
});

/** Negative control on the real pipeline: bytes cut off a segment's end must show up as lost acked messages. */
async function cutTailAndCheck(dataDir: string, topic: string, history: History): Promise<CheckReport> {
  const partitionDir = join(dataDir, `${topic}-0`);
  const segments = (await readdir(partitionDir)).filter((n) => n.endsWith('.meta')).sort();
  const last = join(partitionDir, segments[segments.length - 1]!);
  await truncate(last, Math.max(0, (await stat(last)).size - 3000));
  const broker = await spawnBroker({ dataDir, set: BROKER_SET });
  try {
    const { records, brokerCorrupt } = await readAll(broker.port, topic);
    return checkReadBack(history, records, brokerCorrupt, true);
  } finally {
    await broker.stop();
  }
}

function flipByte(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x10;
  return c;
}

function pct(sorted: readonly number[], q: number): string {
  if (sorted.length === 0) return '-';
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]!.toFixed(0);
}

/** Reads everything back and fails with examples on any problem. */
async function checkBroker(broker: BrokerProcess, topic: string, history: History, when: string): Promise<CheckReport> {
  const { records, brokerCorrupt } = await readAll(broker.port, topic);
  const report = checkReadBack(history, records, brokerCorrupt);
  assert.equal(checkFailures(report), 0, `${when}: ${JSON.stringify({ ...report, examples: undefined })}\n` +
    `${report.examples.join('\n')}`);
  return report;
}

async function readAll(port: number, topic: string): Promise<{ records: ReadRecord[]; brokerCorrupt: number }> {
  const client = await RawClient.connect(port);
  const records: ReadRecord[] = [];
  let brokerCorrupt = 0;
  try {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let offset = 0;
      for (;;) {
        const r = await client.get(topic, 'k9-check', partition, offset, FETCH_BYTES);
        if (r.type === 'result') {
          assert.equal(r.code, 404, `get ${topic}-${partition}@${offset}: result ${r.code} ${r.body.toString()}`);
          break;
        }
        try {
          const set = decodeMessageSet(r.body, { baseOffset: offset, topic, partition });
          assert.ok(set.bytesConsumed > 0, `get ${topic}-${partition}@${offset}: no whole record in ${r.body.length} bytes`);
          for (const m of set.messages) records.push({ partition, offset: m.offset, id: m.id, payload: m.payload });
          offset += set.bytesConsumed;
        } catch (e) {
          if (!(e instanceof CorruptRecordError)) throw e;
          brokerCorrupt++;
          break;
        }
      }
    }
  } finally {
    await client.close();
  }
  return { records, brokerCorrupt };
}

/** Produces from PRODUCERS connections, SIGKILLs the broker after `killAfterMs`, and settles the history. */
async function produceThenKill(broker: BrokerProcess, topic: string, cycle: number, killAfterMs: number,
  history: History): Promise<void> {
  const clients = await Promise.all(Array.from({ length: PRODUCERS }, () => RawClient.connect(broker.port)));
  const puts = new Set<Promise<void>>();
  let stopped = false;
  const start = performance.now();
  const perProducer = RATE / PRODUCERS;
  const state = clients.map(() => ({ sent: 0, inFlight: 0 }));
  const badReplies: string[] = [];

  const pump = (i: number): void => {
    const client = clients[i]!;
    const s = state[i]!;
    const producer = cycle * PRODUCERS + i;
    const due = ((performance.now() - start) / 1000) * perProducer;
    while (!stopped && client.connected && s.inFlight < WINDOW && s.sent < due) {
      const seq = s.sent++;
      const key = messageKey(producer, seq);
      history.sent(key);
      s.inFlight++;
      const p = client.put(topic, seq % PARTITIONS, makePayload(producer, seq, PAYLOAD_BYTES)).then(
        (r) => {
          if (r.code !== 200) history.fail(key, r.code);
          else {
            try { history.ack(key, parsePutResult(r.body)); } catch (e) { badReplies.push((e as Error).message); }
          }
        },
        () => undefined, // the broker died first: stays outstanding, then indeterminate
      ).finally(() => {
        s.inFlight--;
        puts.delete(p);
        pump(i);
      });
      puts.add(p);
    }
  };
  const ticker = setInterval(() => clients.forEach((_, i) => pump(i)), 2);
  try {
    await waitFor(() => performance.now() - start >= killAfterMs, { timeoutMs: killAfterMs + 1000, intervalMs: 5 });
    broker.kill('SIGKILL');
    stopped = true;
    const exit = await broker.exited;
    assert.equal(exit.signal, 'SIGKILL', `broker exited on its own before the kill: ${JSON.stringify(exit)}`);
  } finally {
    clearInterval(ticker);
    stopped = true;
    // Acks already sent by the dying broker are still read: wait for each socket's own close before forcing it.
    await waitFor(() => clients.every((c) => !c.connected), { timeoutMs: 5000, what: 'producer sockets to close' })
      .finally(() => clients.forEach((c) => c.socket.destroy()));
    await Promise.allSettled([...puts]);
  }
  history.settleOutstanding();
  assert.deepEqual(badReplies, [], 'malformed put replies');
}
