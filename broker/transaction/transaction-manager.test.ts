import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { crc32Masked, decodeMessageSet } from '../../sdk/protocol/record.js';
import { embeddedConfig } from '../config/server-config.js';
import { BrokerStats } from '../server/broker-stats.js';
import { IdWorker } from '../store/id-worker.js';
import { MessageStore } from '../store/message-store.js';
import { TransactionManager } from './transaction-manager.js';
import { encodeTxRecord, JOURNAL_MAGIC, type TxPut, type TxRecord } from './tx-records.js';
import { XaError } from './xa-error.js';

const logger = pino({ level: 'silent' });

interface Env { store: MessageStore; tm: TransactionManager; stats: BrokerStats; idWorker: IdWorker }

describe('transaction/transaction-manager', () => {
  let dir: string;
  let env: Env | undefined;

  const open = async (settings: Record<string, string> = {}): Promise<Env> => {
    const config = embeddedConfig({ 'system.dataPath': dir, 'system.numPartitions': '2', 'system.maxTxTimeoutInSeconds': '1',
      ...settings });
    const store = await MessageStore.open({ config, logger });
    const stats = new BrokerStats();
    const idWorker = new IdWorker(1);
    const tm = await TransactionManager.open({ config, store, idWorker, stats, logger });
    env = { store, tm, stats, idWorker };
    return env;
  };
  const close = async (): Promise<void> => {
    if (env === undefined) return;
    await env.tm.close();
    await env.store.close();
    env = undefined;
  };
  const payloads = async (store: MessageStore, topic: string, partition: number): Promise<string[]> => {
    const log = store.get(topic, partition);
    if (log === undefined) return [];
    const buf = await log.read(0, 1 << 20);
    return decodeMessageSet(buf, { baseOffset: 0 }).messages.map((m) => m.payload.toString());
  };

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'metaq-txm-')); });
  afterEach(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  it('completes a journalled commit whose appends only partly landed, without duplicating the ones that did', async () => {
    const first = await open();
    let store = first.store;
    const idWorker = first.idWorker;
    const puts: TxPut[] = ['a', 'b', 'c', 'd'].map((text, i) => {
      idWorker.next();
      const data = Buffer.from(text);
      return { topic: 'orders', partition: i < 3 ? 0 : 1, flag: 0, idHi: idWorker.hi, idLo: idWorker.lo, crc: crc32Masked(data), data };
    });
    // What a crash leaves: the commit is journalled, and only the first record of partition 0 reached its log.
    const log0 = store.getOrCreate('orders', 0);
    log0.append(puts[0]!.idHi, puts[0]!.idLo, 0, puts[0]!.data, puts[0]!.crc);
    await new Promise<void>((resolve, reject) => log0.whenStored((e) => (e === null ? resolve() : reject(e))));
    await close();
    const key = 'TX:crashed:1';
    const records: TxRecord[] = [
      { type: 'begin', key, timeoutSec: 0 },
      ...puts.map((put): TxRecord => ({ type: 'put', key, put })),
      { type: 'commit', key, wasPrepared: false, parts: [{ topic: 'orders', partition: 0, from: 0 },
        { topic: 'orders', partition: 1, from: 0 }] },
    ];
    await mkdir(join(dir, 'transactions'), { recursive: true });
    await writeFile(join(dir, 'transactions', `${'1'.padStart(20, '0')}.txlog`),
      Buffer.concat([JOURNAL_MAGIC, ...records.map(encodeTxRecord)]));

    ({ store } = await open());
    assert.deepEqual(env!.tm.recoveryReport,
      { committedCompleted: 1, messagesFound: 1, messagesAppended: 3, preparedRestored: 0, rolledBack: 0 });
    assert.deepEqual(await payloads(store, 'orders', 0), ['a', 'b', 'c']);
    assert.deepEqual(await payloads(store, 'orders', 1), ['d']);
    await close();
    ({ store } = await open());
    assert.equal(env!.tm.recoveryReport.committedCompleted, 0);
    assert.deepEqual(await payloads(store, 'orders', 0), ['a', 'b', 'c']);
  });

  it('keeps a prepared branch past its timeout while an unprepared one is rolled back', async () => {
    const { tm, stats } = await open();
    const owner = {};
    const prepared = 'XID:1:01:02:q';
    const active = 'XID:1:03:04:q';
    for (const k of [prepared, active]) {
      await tm.begin(owner, k, 1);
      await tm.put(owner, k, 'orders', 0, 0, Buffer.from(k), -1);
    }
    assert.equal(await tm.prepare(owner, prepared), 0);
    const deadline = Date.now() + 5000;
    while (stats.txRollback === 0) {
      assert.ok(Date.now() < deadline, 'the unprepared branch did not time out');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(tm.recover('q'), [prepared]);
    await assert.rejects(tm.commit(owner, active, true), (e: unknown) => e instanceof XaError && e.xaCode === 106);
    await tm.commit(owner, prepared, false);
    assert.deepEqual(await payloads(env!.store, 'orders', 0), [prepared]);
  });

  it('frees a timeout slot when its transaction ends before the timeout', async () => {
    const { tm } = await open({ 'system.maxTxTimeoutTimerCapacity': '2' });
    const owner = {};
    for (let i = 0; i < 5; i++) {
      await tm.begin(owner, `TX:cap:${i}`, 1);
      await tm.put(owner, `TX:cap:${i}`, 'orders', 0, 0, Buffer.from(`m${i}`), -1);
      if (i % 2 === 0) await tm.commit(owner, `TX:cap:${i}`, true); else await tm.rollback(owner, `TX:cap:${i}`);
    }
    await tm.begin(owner, 'TX:cap:10', 1);
    await tm.begin(owner, 'TX:cap:11', 1);
    await assert.rejects(tm.begin(owner, 'TX:cap:12', 1), /maxTxTimeoutTimerCapacity 2/);
    await tm.begin(owner, 'TX:cap:13', 0);
  });

  it('journals into one file at a time: a checkpoint drops finished transactions', async () => {
    const { tm } = await open();
    const owner = {};
    for (let i = 0; i < 20; i++) {
      await tm.begin(owner, `TX:s:${i}`, 0);
      await tm.put(owner, `TX:s:${i}`, 'orders', i % 2, 0, Buffer.from(`m${i}`), -1);
      if (i % 2 === 0) await tm.commit(owner, `TX:s:${i}`, true); else await tm.rollback(owner, `TX:s:${i}`);
    }
    await tm.begin(owner, 'TX:s:999', 0);
    await tm.checkpoint();
    assert.equal(tm.journalFiles, 1);
    await close();
    await open();
    assert.deepEqual(env!.tm.recoveryReport,
      { committedCompleted: 0, messagesFound: 0, messagesAppended: 0, preparedRestored: 0, rolledBack: 1 });
    assert.equal((await payloads(env!.store, 'orders', 0)).length, 10);
  });
});
