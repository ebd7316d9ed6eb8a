/**
 * Consumes `orders` as an Observable: each delivery is acked after it was handled, so the group's offset only
 * moves past what was processed. Stops after 10 messages (or `COUNT`), commits, and exits.
 *
 *   node --import tsx examples/producer.ts && node --import tsx examples/consumer-observable.ts
 */
import { concatMap, take } from 'rxjs';
import { createClient } from '../sdk/index.js';

const count = Number(process.env.COUNT ?? 10);
const client = await createClient({ serverUrl: process.env.METAQ_URL ?? 'meta://127.0.0.1:8123' });
const consumer = client.consumer({ group: process.env.GROUP ?? 'example-observable' });

consumer.messages$('orders').pipe(
  concatMap(async (d) => {
    console.log(`got ${d.message.value.toString()} (partition ${d.message.partition.partition}, offset ${d.message.offset})`);
    d.ack();
  }),
  take(count),
).subscribe({
  complete: () => void client.close(),
  error: (e: unknown) => { console.error(e); void client.close(); },
});
