/**
 * Broadcast consuming: every process (every host) running this gets every message of `config-updates`, with its
 * offsets in a local file (a group per host). Sends three updates, reads them back, exits.
 *
 *   node --import tsx examples/broadcast.ts
 */
import { concatMap, take } from 'rxjs';
import { createClient } from '../sdk/index.js';

const client = await createClient({ serverUrl: process.env.METAQ_URL ?? 'meta://127.0.0.1:8123' });
const producer = client.producer();
const consumer = client.consumer({ group: 'config-watchers', broadcast: true });
for (const v of ['feature-x=on', 'limit=100', 'feature-x=off']) await producer.send({ topic: 'config-updates', value: v });

const updates = consumer.messages$('config-updates').pipe(
  concatMap(async (d) => {
    console.log(`update: ${d.message.value.toString()}`);
    d.ack();
  }),
  take(3),
);
await new Promise<void>((resolve, reject) => updates.subscribe({ complete: resolve, error: reject }));
await client.close();
