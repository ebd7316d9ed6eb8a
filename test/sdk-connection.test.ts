import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionError, TimeoutError } from '../sdk/errors.js';
import { BrokerConnection } from '../sdk/network/broker-connection.js';
import { formatBrokerUrl, parseBrokerUrl } from '../sdk/protocol/broker-url.js';
import { encodeGet, encodePut, encodeVersion } from '../sdk/protocol/encode.js';
import { parsePutResult } from '../sdk/protocol/message-id.js';
import { crc32Masked, RECORD_HEADER_SIZE } from '../sdk/protocol/record.js';
import { freePort } from './harness/free-port.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { uniqueName } from './harness/temp-dir.js';

describe('sdk/network/broker-url', () => {
  it('parses meta:// URLs, IPv6 and a slaveId suffix included', () => {
    assert.deepEqual(parseBrokerUrl('meta://127.0.0.1:8123'), { host: '127.0.0.1', port: 8123 });
    assert.deepEqual(parseBrokerUrl('meta://[::1]:8123?slaveId=1'), { host: '::1', port: 8123 });
    assert.equal(formatBrokerUrl({ host: '::1', port: 1 }), 'meta://[::1]:1');
    for (const bad of ['http://h:1', 'meta://h', 'meta://h:0', 'meta://h:70000', 'meta://:1']) {
      assert.throws(() => parseBrokerUrl(bad), /invalid broker URL/, bad);
    }
  });
});

describe('sdk/network/broker-connection (against an in-process broker)', () => {
  let tb: TestBroker;
  before(async () => { tb = await startTestBroker({ 'system.longPollTimeoutMs': '5000' }); });
  after(() => tb.dispose());

  it('pipelines thousands of puts and matches every reply to its request', async () => {
    const conn = await BrokerConnection.connect({ host: '127.0.0.1', port: tb.port });
    const topic = uniqueName('conn');
    const bodies = Array.from({ length: 5000 }, (_, i) => Buffer.from(`message ${i}`));
    const replies = await Promise.all(bodies.map((body) => conn.request((opaque) =>
      encodePut({ topic, partition: 0, flag: 0, checksum: crc32Masked(body), opaque, body }))));
    let offset = 0;
    for (const [i, r] of replies.entries()) {
      assert.equal(r.type === 'result' && r.code, 200);
      assert.equal(parsePutResult(r.body.toString()).offset, offset, `put ${i}`);
      offset += RECORD_HEADER_SIZE + bodies[i]!.length;
    }
    assert.equal(conn.inFlight, 0);
    await conn.close();
  });

  it('fails a request with a retriable TimeoutError when no reply comes in time', async () => {
    const conn = await BrokerConnection.connect({ host: '127.0.0.1', port: tb.port });
    const topic = uniqueName('timeout');
    // A get at the end of an empty partition is parked by the broker for longPollTimeoutMs (5 s).
    const err = await conn.request((opaque) => encodeGet({ topic, group: 'g', partition: 0, offset: 0, maxSize: 1024, opaque }), 200)
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TimeoutError && err.retriable, String(err));
    assert.match((await conn.request(encodeVersion)).body.toString(), /\d/, 'the connection stays usable');
    await conn.close();
  });

  it('fails pending requests with a retriable ConnectionError when the connection closes', async () => {
    const conn = await BrokerConnection.connect({ host: '127.0.0.1', port: tb.port });
    const topic = uniqueName('closing');
    const parked = conn.request((opaque) => encodeGet({ topic, group: 'g', partition: 0, offset: 0, maxSize: 1024, opaque }));
    let closeError: Error | undefined | null = null;
    conn.onClose((e) => { closeError = e; });
    await conn.close();
    const err = await parked.then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ConnectionError && err.retriable, String(err));
    assert.equal(closeError, undefined, 'a close asked for is reported without an error');
    await assert.rejects(conn.request(encodeVersion), ConnectionError);
  });

  it('fails pending requests in the order they were made, also when their slots wrap around', async () => {
    const conn = await BrokerConnection.connect({ host: '127.0.0.1', port: tb.port });
    // Advance the opaques to just below the 1024th slot, a few at a time so that the slots do not grow.
    for (let n = 0; n < 1015; n += 5) await Promise.all(Array.from({ length: 5 }, () => conn.request(encodeVersion)));
    const topic = uniqueName('order');
    const failed: number[] = [];
    // Parked gets (the broker long-polls them) whose opaques run past slot 1023 and wrap to slot 0.
    for (let n = 0; n < 20; n++) {
      conn.requestWith((opaque) => encodeGet({ topic, group: 'g', partition: 0, offset: 0, maxSize: 1024, opaque }),
        (_reply, err, token) => {
          assert.ok(err instanceof ConnectionError);
          failed.push(token as number);
        }, n);
    }
    await conn.close();
    assert.deepEqual(failed, Array.from({ length: 20 }, (_, n) => n));
  });

  it('reports a refused connection as a retriable ConnectionError', async () => {
    const port = await freePort();
    const err = await BrokerConnection.connect({ host: '127.0.0.1', port }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ConnectionError && err.retriable, String(err));
    assert.match((err as Error).message, /cannot connect to meta:\/\/127\.0\.0\.1/);
  });
});
