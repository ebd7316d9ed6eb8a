/**
 * Consumes `orders` with a listener, MetaQ style: the handler's success acks the message; a throw retries it.
 * Stops after 10 messages (or `COUNT`).
 *
 *   node --import tsx examples/producer.ts && node --import tsx examples/consumer-listener.ts
 */
import { createClient, type Message } from '../sdk/index.js';

const count = Number(process.env.COUNT ?? 10);
const client = await createClient({ serverUrl: process.env.METAQ_URL ?? 'meta://127.0.0.1:8123' });
const consumer = client.consumer({ group: process.env.GROUP ?? 'example-listener' });
let seen = 0;

await new Promise<void>((resolve) => {
  consumer.subscribe('orders', (m: Message) => {
    console.log(`got ${m.value.toString()} (attribute ${m.attribute ?? '-'})`);
    if (++seen === count) resolve();
  });
});
await client.close();
