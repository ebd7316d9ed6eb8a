/**
 * Retry, then local-disk recovery: a handler that keeps failing on one message. The consumer retries it in line
 * (`maxFetchRetries`), then stores it in the recover store on disk and moves on with the partition; the recover
 * loop delivers it again every `recoverIntervalMs` until the handler accepts it.
 *
 *   node --import tsx examples/retry-and-recover.ts
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Message } from '../sdk/index.js';

const client = await createClient({
  serverUrl: process.env.METAQ_URL ?? 'meta://127.0.0.1:8123',
  recoverDir: mkdtempSync(join(tmpdir(), 'metaq-recover-')),
});
const topic = `payments-${process.pid}`;
const producer = client.producer();
for (const v of ['pay 10', 'POISON', 'pay 20', 'pay 30']) await producer.send({ topic, value: v, partition: 0 });

const consumer = client.consumer({ group: 'payments', maxFetchRetries: 2, recoverIntervalMs: 500 });
let poisonAttempts = 0;
await new Promise<void>((resolve) => {
  consumer.subscribe(topic, (m: Message) => {
    const v = m.value.toString();
    if (v === 'POISON') {
      poisonAttempts++;
      console.log(`POISON attempt ${poisonAttempts} (redeliveries ${m.redeliveries})`);
      if (poisonAttempts < 5) throw new Error('cannot process yet');
      console.log('POISON processed from the recover store');
      resolve();
      return;
    }
    console.log(`processed ${v}`);
  });
});
await client.close();
