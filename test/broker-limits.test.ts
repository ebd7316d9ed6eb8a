import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, bodyText } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

describe('broker limits', () => {
  let tb: TestBroker;
  let idle: TestBroker;

  before(async () => {
    // A long idle timeout here, so that the connections the tests hold cannot be closed for idleness midway.
    tb = await startTestBroker({ 'system.maxConnections': '3', 'system.idleTimeoutMs': '600000', 'system.maxLineBytes': '256' });
    idle = await startTestBroker({ 'system.idleTimeoutMs': '300' });
  });
  after(async () => {
    await tb.dispose();
    await idle.dispose();
  });

  it('closes a connection that stays idle past idleTimeoutMs', async () => {
    const c = await RawClient.connect(idle.port);
    assert.match(await c.version(), /\d/);
    const started = Date.now();
    await waitFor(() => !c.connected, { timeoutMs: 5000, what: 'the idle connection to be closed' });
    assert.ok(Date.now() - started >= 250, 'not closed before the idle timeout');
  });

  it('refuses connections beyond maxConnections and accepts again once one closes', async () => {
    const held = await Promise.all([1, 2, 3].map(() => RawClient.connect(tb.port)));
    for (const c of held) assert.match(await c.version(), /\d/);
    const extra = await RawClient.connect(tb.port);
    await waitFor(() => !extra.connected, { timeoutMs: 5000, what: 'the broker to refuse the extra connection' });
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
    await waitFor(() => !bad.connected, { timeoutMs: 5000, what: 'the broker to close the connection' });
    const reply = bad.received[0];
    assert.ok(reply !== undefined && reply.type === 'result' && reply.code === 400, 'a result 400 before the close');
    assert.match(bodyText(reply), /line/i);
    assert.equal((await good.put(uniqueName('limits'), 0, 'ok')).code, 200);
    await good.close();
  });
});
