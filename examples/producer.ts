/**
 * Sends ten messages to `orders` and prints where each landed.
 *
 *   npm start                            # in another terminal
 *   node --import tsx examples/producer.ts
 */
import { createClient, partitionName } from '../sdk/index.js';

const client = await createClient({ serverUrl: process.env.METAQ_URL ?? 'meta://127.0.0.1:8123' });
try {
  const producer = client.producer();
  for (let i = 0; i < 10; i++) {
    const r = await producer.send({ topic: 'orders', value: `order ${i}`, attribute: i % 2 === 0 ? 'even' : 'odd' });
    console.log(`sent order ${i}: id ${r.id} partition ${partitionName(r.partition)} offset ${r.offset}`);
  }
} finally {
  await client.close();
}
