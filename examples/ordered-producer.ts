/**
 * Ordered producing: with the `hash` partitioner every message of one key goes to the same partition, so a
 * consumer sees each customer's events in the order they were sent.
 *
 *   node --import tsx examples/ordered-producer.ts
 */
import { createClient, partitionName } from '../sdk/index.js';

const client = await createClient({ serverUrl: process.env.METAQ_URL ?? 'meta://127.0.0.1:8123' });
try {
  const producer = client.producer({ partitioner: 'hash' });
  for (const step of ['created', 'paid', 'shipped']) {
    for (const customer of ['alice', 'bob', 'carol']) {
      const r = await producer.send({ topic: 'customer-events', key: customer, value: JSON.stringify({ customer, step }) });
      console.log(`${customer} ${step} -> partition ${partitionName(r.partition)} offset ${r.offset}`);
    }
  }
} finally {
  await client.close();
}
