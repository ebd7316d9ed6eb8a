/**
 * An application logging through log4js into a metaq topic, then reading its log back.
 *
 * In an application that installed metaq, the appender is named by its package path in the log4js config:
 * `{ type: 'metaq/log4js', topic: 'app-logs', serverUrl: 'meta://127.0.0.1:8123' }`. Inside this repository metaq is
 * not in node_modules, so this example hands log4js the module itself (the same module, loaded by its package name).
 *
 * Run: npm start (in another terminal), then node --import tsx examples/log4js-app.ts
 */
import { createRequire } from 'node:module';
import log4js, { type AppenderModule } from 'log4js';
import { lastValueFrom, toArray } from 'rxjs';
import { createClient } from 'metaq';

const serverUrl = process.env.METAQ_URL ?? 'meta://127.0.0.1:8123';
const topic = `app-logs-${process.pid}`;
const metaqLog4js = createRequire(import.meta.url)('metaq/log4js') as AppenderModule & { stats(): unknown[] };

log4js.configure({
  appenders: {
    mq: { type: metaqLog4js, topic, serverUrl, layout: { type: 'pattern', pattern: '%m' }, lingerMs: 50 },
  },
  categories: { default: { appenders: ['mq'], level: 'info' } },
});

const log = log4js.getLogger('checkout');
log.addContext('region', 'eu-1');
log.info('order %d paid', 7);
log.warn('stock of item %s is low', 'A-42');

// shutdown delivers what is still buffered (within shutdownTimeoutMs) before it calls back.
await new Promise<void>((resolve) => log4js.shutdown(() => resolve()));
console.log('appender stats:', JSON.stringify(metaqLog4js.stats()[0]));

const client = await createClient({ serverUrl });
for (const m of await lastValueFrom(client.browse(topic).pipe(toArray()))) {
  console.log(`${m.attribute}: ${m.payload.toString()}`);
}
await client.close();
