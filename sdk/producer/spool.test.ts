import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { StorageError } from '../errors.js';
import { decodeSpooled, encodeSpooled, Spool, type SpooledMessage } from './spool.js';

describe('sdk/producer/spool', () => {
  it('round-trips every combination of key, attribute and partition', () => {
    const cases: SpooledMessage[] = [
      { topic: 't', payload: Buffer.from('plain'), compression: 0 },
      { topic: 't', payload: Buffer.alloc(0), compression: 1, attribute: '' },
      { topic: 't', payload: Buffer.from('p'), compression: 0, key: Buffer.from('k\u00e9y'), attribute: 'attr \u00fc',
        partition: { brokerId: 3, partition: 7 } },
      { topic: 't', payload: Buffer.from([0, 1, 2]), compression: 2, partition: { brokerId: -1, partition: 2 } },
    ];
    for (const m of cases) {
      const back = decodeSpooled('t', encodeSpooled(m));
      assert.deepEqual(back, { ...m, ...(m.key === undefined ? {} : { key: Buffer.from(m.key) }) });
    }
    assert.deepEqual(decodeSpooled('t', encodeSpooled({ topic: 't', payload: Buffer.from('x'), compression: 0, key: 'abc' })).key,
      Buffer.from('abc'));
  });

  it('refuses bytes that are not a spooled message', () => {
    const good = encodeSpooled({ topic: 't', payload: Buffer.from('x'), compression: 0, key: 'key', attribute: 'a' });
    for (const bad of [Buffer.alloc(0), Buffer.from([9, 0, 0]), good.subarray(0, 8)]) {
      assert.throws(() => decodeSpooled('t', bad), StorageError);
    }
  });

  it('keeps spooled messages in order across a reopen and lists the spooled topics', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metaq-spool-'));
    try {
      const logger = pino({ level: 'silent' });
      assert.deepEqual(await Spool.topics(dir), []);
      const spool = await Spool.open(dir, 'orders', logger);
      for (let i = 0; i < 5; i++) await spool.append(encodeSpooled({ topic: 'orders', payload: Buffer.from(`m${i}`), compression: 0 }));
      const first = spool.entries();
      const { value } = await first.next();
      await first.return();
      await spool.remove(value!.seq);
      await spool.close();
      assert.deepEqual(await Spool.topics(dir), ['orders']);
      const again = await Spool.open(dir, 'orders', logger);
      assert.equal(again.size, 4);
      const payloads: string[] = [];
      for await (const { record } of again.entries()) payloads.push(decodeSpooled('orders', record).payload.toString());
      assert.deepEqual(payloads, ['m1', 'm2', 'm3', 'm4']);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
