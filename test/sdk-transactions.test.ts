/**
 * The SDK's transactions against a real broker: local transactions (explicit and callback forms), XA branches
 * (two-phase commit, recover, rollback), and consumer-side batches acknowledged or rolled back by hand.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { lastValueFrom, toArray } from 'rxjs';
import { manualAck } from '../sdk/consumer/manual-ack.js';
import { createClient, type MetaqClient } from '../sdk/client/client.js';
import { InvalidArgumentError, TransactionError } from '../sdk/errors.js';
import type { Producer } from '../sdk/producer/producer.js';
import { XaCodes } from '../sdk/producer/transaction-commands.js';
import type { Xid } from '../sdk/producer/xa-resource.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

const SET = { 'system.numPartitions': '4', 'system.longPollTimeoutMs': '0', 'system.maxTxTimeoutInSeconds': '2' };

let xidSeq = 0;
function newXid(): Xid {
  xidSeq++;
  return { formatId: 7, gtrid: Buffer.from(`g-${process.pid}-${xidSeq}`), bqual: Buffer.from([xidSeq & 0xff]) };
}

describe('SDK transactions', () => {
  let tb: TestBroker;
  let client: MetaqClient;
  let producer: Producer;

  /** Every message of the topic as `<partition>:<value>`, partition by partition. */
  async function visible(topic: string): Promise<string[]> {
    const ms = await lastValueFrom(client.browse(topic).pipe(toArray()));
    return ms.map((m) => `${m.partition.partition}:${m.value.toString()}`);
  }

  before(async () => {
    tb = await startTestBroker(SET);
    client = await createClient({ serverUrl: `meta://127.0.0.1:${tb.port}`, requestTimeoutMs: 5000 });
    producer = client.producer();
  });
  after(async () => {
    await client.close();
    await tb.dispose();
  });

  describe('local transactions', () => {
    it('makes every message of a committed transaction visible at once, across partitions of one broker', async () => {
      const topic = uniqueName('tx-commit');
      const tx = producer.beginTransaction();
      assert.match(tx.key, /^TX:[^:]+-\d+-\d+:\d+$/);
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await tx.send({ topic, value: `m${i}`, partition: i }));
      assert.deepEqual(results.map((r) => [r.partition.partition, r.offset]), [[0, -1], [1, -1], [2, -1], [3, -1]]);
      assert.equal(new Set(results.map((r) => r.id)).size, 4);
      assert.deepEqual(await visible(topic), []);
      await tx.commit();
      assert.equal(tx.state, 'committed');
      assert.deepEqual(await visible(topic), ['0:m0', '1:m1', '2:m2', '3:m3']);
    });

    it('keeps the order of sends made without awaiting each one', async () => {
      const topic = uniqueName('tx-order');
      const tx = producer.beginTransaction();
      await Promise.all(Array.from({ length: 20 }, (_, i) => tx.send({ topic, value: `m${i}`, partition: 1 })));
      await tx.commit();
      assert.deepEqual(await visible(topic), Array.from({ length: 20 }, (_, i) => `1:m${i}`));
    });

    it('leaves nothing visible after a rollback', async () => {
      const topic = uniqueName('tx-rollback');
      const tx = producer.beginTransaction();
      await tx.send({ topic, value: 'a' });
      await tx.send({ topic, value: 'b' });
      await tx.rollback();
      assert.equal(tx.state, 'rolled back');
      await producer.send({ topic, value: 'after', partition: 0 });
      assert.deepEqual(await visible(topic), ['0:after']);
    });

    it('commits in the callback form when the callback resolves and rolls back when it throws', async () => {
      const topic = uniqueName('tx-callback');
      const n = await producer.transaction(async (tx) => {
        await tx.send({ topic, value: 'kept', partition: 2 });
        return 1;
      });
      assert.equal(n, 1);
      await assert.rejects(producer.transaction(async (tx) => {
        await tx.send({ topic, value: 'dropped', partition: 2 });
        throw new Error('handler failed');
      }), /handler failed/);
      assert.deepEqual(await visible(topic), ['2:kept']);
    });

    it('refuses a second commit, a rollback after commit and a send after completion', async () => {
      const topic = uniqueName('tx-twice');
      const tx = producer.beginTransaction();
      await tx.send({ topic, value: 'x' });
      await tx.commit();
      await assert.rejects(tx.commit(), (e: unknown) => e instanceof TransactionError && /is committed/.test(e.message));
      await assert.rejects(tx.rollback(), TransactionError);
      await assert.rejects(tx.send({ topic, value: 'y' }), TransactionError);
    });

    it('refuses a message for a partition of another broker than the transaction', async () => {
      const topic = uniqueName('tx-other-broker');
      const tx = producer.beginTransaction();
      await tx.send({ topic, value: 'x', partition: 0 });
      await assert.rejects(tx.send({ topic, value: 'y', partition: { brokerId: 99, partition: 0 } }),
        (e: unknown) => e instanceof InvalidArgumentError && /runs on broker 0/.test(e.message));
      await tx.rollback();
    });

    it('commits an empty transaction without asking the broker', async () => {
      const tx = producer.beginTransaction();
      await tx.commit();
      assert.equal(tx.state, 'committed');
    });

    it('reports XA_RBTIMEOUT when the broker rolled back a transaction on its timeout', async () => {
      const topic = uniqueName('tx-timeout');
      const tx = producer.beginTransaction({ timeoutSec: 1 });
      await tx.send({ topic, value: 'late' });
      const deadline = Date.now() + 10_000;
      let error: unknown;
      // Poll by sending: the broker refuses with code 106 once the timeout rolled the transaction back.
      while (Date.now() < deadline && error === undefined) {
        await tx.send({ topic, value: 'late' }).catch((e: unknown) => { error = e; });
      }
      assert.ok(error instanceof TransactionError && error.xaCode === XaCodes.XA_RBTIMEOUT, String(error));
      await assert.rejects(tx.commit(), /a send of transaction .* failed/);
      await tx.rollback().catch(() => undefined);
      assert.deepEqual(await visible(topic), []);
    });
  });

  describe('XA', () => {
    it('commits a prepared branch in two phases', async () => {
      const topic = uniqueName('xa-2pc');
      const xa = producer.xaResource({ uniqueQualifier: uniqueName('uq') });
      const xid = newXid();
      await xa.start(xid);
      await xa.send({ topic, value: 'a', partition: 0 });
      await xa.send({ topic, value: 'b', partition: 3 });
      await xa.end(xid);
      assert.equal(await xa.prepare(xid), XaCodes.XA_OK);
      assert.deepEqual(await visible(topic), []);
      await xa.commit(xid, false);
      assert.deepEqual(await visible(topic), ['0:a', '3:b']);
    });

    it('refuses a timeout that is not a whole number of seconds, for a transaction and for an XA resource', () => {
      assert.throws(() => producer.beginTransaction({ timeoutSec: -1 }), InvalidArgumentError);
      assert.throws(() => producer.xaResource({ timeoutSec: 1.5 }), InvalidArgumentError);
      const xa = producer.xaResource({ uniqueQualifier: uniqueName('uq') });
      assert.throws(() => xa.setTransactionTimeout(0x80000000), InvalidArgumentError);
      assert.equal(xa.getTransactionTimeout(), 0);
    });

    it('votes read-only for a branch with no message', async () => {
      const xa = producer.xaResource({ uniqueQualifier: uniqueName('uq') });
      const xid = newXid();
      await xa.start(xid);
      await xa.end(xid);
      assert.equal(await xa.prepare(xid), XaCodes.XA_RDONLY);
    });

    it('lists a prepared branch in recover, from another client, and commits it from there', async () => {
      const topic = uniqueName('xa-recover');
      const uq = uniqueName('uq');
      const xa = producer.xaResource({ uniqueQualifier: uq });
      const [x1, x2] = [newXid(), newXid()];
      for (const x of [x1, x2]) {
        await xa.start(x);
        await xa.send({ topic, value: x.gtrid.toString(), partition: 1 });
        await xa.end(x);
        await xa.prepare(x);
      }
      const other = await createClient({ serverUrl: `meta://127.0.0.1:${tb.port}` });
      try {
        const xa2 = other.producer().xaResource({ uniqueQualifier: uq });
        const found = await xa2.recover();
        assert.deepEqual(found.map((x) => xa2.keyOf(x)), [x1, x2].map((x) => xa.keyOf(x)));
        assert.deepEqual(await producer.xaResource({ uniqueQualifier: uniqueName('uq') }).recover(), []);
        await xa2.commit(found[0]!, false);
        await xa2.rollback(found[1]!);
        assert.deepEqual(await xa2.recover(), []);
      } finally {
        await other.close();
      }
      assert.deepEqual(await visible(topic), [`1:${x1.gtrid.toString()}`]);
    });

    it('rolls back a prepared branch, and reports an unknown one with XAER_NOTA', async () => {
      const topic = uniqueName('xa-rollback');
      const xa = producer.xaResource({ uniqueQualifier: uniqueName('uq') });
      const xid = newXid();
      await xa.start(xid);
      await xa.send({ topic, value: 'gone' });
      await xa.end(xid);
      await xa.prepare(xid);
      await xa.rollback(xid);
      assert.deepEqual(await visible(topic), []);
      await assert.rejects(xa.commit(xid, false),
        (e: unknown) => e instanceof TransactionError && e.xaCode === XaCodes.XAER_NOTA);
    });

    it('refuses a send with no active branch and a prepare before end', async () => {
      const xa = producer.xaResource({ uniqueQualifier: uniqueName('uq') });
      await assert.rejects(xa.send({ topic: 'x', value: 'y' }),
        (e: unknown) => e instanceof TransactionError && e.xaCode === XaCodes.XAER_PROTO);
      const xid = newXid();
      await xa.start(xid);
      await assert.rejects(xa.prepare(xid), /end\(xid\) it first/);
      await xa.rollback(xid);
    });

    it('commits an ended branch in one phase', async () => {
      const topic = uniqueName('xa-1pc');
      const xa = producer.xaResource({ uniqueQualifier: uniqueName('uq') });
      const xid = newXid();
      await xa.start(xid);
      await xa.send({ topic, value: 'one', partition: 2 });
      await xa.end(xid);
      await xa.commit(xid, true);
      assert.deepEqual(await visible(topic), ['2:one']);
    });
  });

  describe('consumer-side transactions', () => {
    it('redelivers exactly a rolled-back batch (or the batch of a throwing handler) before what follows it', async () => {
      const topic = uniqueName('tx-consume');
      for (let i = 0; i < 6; i++) await producer.send({ topic, value: `m${i}`, partition: 0 });
      const dir = await tempDir('metaq-tx-consume-');
      const c = await createClient({ serverUrl: `meta://127.0.0.1:${tb.port}`, offsetsFile: `${dir.path}/offsets.json`,
        recoverDir: `${dir.path}/recover` });
      try {
        const consumer = c.consumer({ group: uniqueName('g'), startFrom: 'earliest', partitionConcurrency: 3,
          maxFetchDelayMs: 100, maxFetchRetries: 5 });
        const seen: string[] = [];
        const acked: string[] = [];
        let rolledBack = false;
        let thrown = false;
        const sub = consumer.messages$(topic).pipe(manualAck((m, tx) => {
          const v = m.value.toString();
          seen.push(v);
          if (v === 'm4' && !thrown) {
            thrown = true;
            throw new Error('handler failed');
          }
          if (v === 'm2' && !rolledBack) {
            rolledBack = true;
            tx.rollback();
          } else if (tx.pending === 3) {
            tx.ack();
          }
        })).subscribe((m) => acked.push(m.value.toString()));
        await waitFor(() => acked.length >= 6, { what: 'six acked messages' });
        sub.unsubscribe();
        assert.deepEqual(seen, ['m0', 'm1', 'm2', 'm0', 'm1', 'm2', 'm3', 'm4', 'm3', 'm4', 'm5']);
        assert.deepEqual(acked, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
        await consumer.close();
      } finally {
        await c.close();
        await dir.remove();
      }
    });
  });
});
