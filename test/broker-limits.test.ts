import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, bodyText } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { uniqueName } from './harness/temp-dir.js';

describe('broker limits', () => {
  let tb: TestBroker;

  before(async () => {
    tb = await startTestBroker({
      'system.maxConnections': '3', 'system.idleTimeoutMs': '300', 'system.maxLineBytes': '256',
    });
  });
  after(() => tb.dispose());

  it('closes a connection that stays idle past idleTimeoutMs', async () => {
    const c = await RawClient.connect(tb.port);
    assert.match(await c.version(), /\d/);
    const started = Date.now();
    await c.closed;
    assert.ok(Date.now() - started >= 250, 'not closed before the idle timeout');
  });

  it('refuses connections beyond maxConnections and accepts again once one closes', async () => {
    const held = await Promise.all([1, 2, 3].map(() => RawClient.connect(tb.port)));
    for (const c of held) assert.match(await c.version(), /\d/);
    const extra = await RawClient.connect(tb.port);
    await extra.closed;
    assert.equal(extra.received.length, 0);
    await held[0]!.close();
    const again = await RawClient.connect(tb.port);
    assert.match(await again.version(), /\d/);
    await Promise.all([again, ...held.slice(1)].map((c) => c.close()));
  });

  it('answers a header line longer than maxLineBytes with 400 and closes, while other connections work', async () => {
    const bad = await RawClient.connect(tb.port);
    const good = await RawClient.connect(tb.port);
    bad.send(`put ${'x'.repeat(300)}`);
    await bad.closed;
    const reply = bad.received[0];
    assert.ok(reply !== undefined && reply.type === 'result' && reply.code === 400, 'a result 400 before the close');
    assert.match(bodyText(reply), /line/i);
    assert.equal((await good.put(uniqueName('limits'), 0, 'ok')).code, 200);
    await good.close();
  });
});
