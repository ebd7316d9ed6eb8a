import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { ConnectionError } from '../sdk/errors.js';
import { BrokerLink, type LinkState } from '../sdk/network/broker-link.js';
import { encodeVersion } from '../sdk/protocol/encode.js';
import { freePort } from './harness/free-port.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { waitFor } from './harness/wait-for.js';

describe('sdk/network/broker-link', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => { for (const c of cleanups.reverse()) await c(); });

  it('fails at once when the first connection is refused', async () => {
    const port = await freePort();
    const link = new BrokerLink({ host: '127.0.0.1', port });
    const t0 = Date.now();
    await assert.rejects(link.whenConnected(5000), (e: unknown) => e instanceof ConnectionError && e.retriable);
    assert.ok(Date.now() - t0 < 2000);
    await link.close();
  });

  it('reconnects after the broker restarts, and requests made meanwhile wait for it', async () => {
    const port = await freePort();
    let tb: TestBroker = await startTestBroker({ 'system.serverPort': String(port) });
    cleanups.push(() => tb.dispose());
    const link = new BrokerLink({ host: '127.0.0.1', port }, { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    cleanups.push(() => link.close());
    const states: LinkState[] = [];
    link.onStateChange((s) => states.push(s));
    await link.whenConnected();
    const v = await link.request((o) => encodeVersion(o));
    assert.equal(v.type === 'result' && v.code, 200);

    await tb.stop();
    await waitFor(() => !link.isConnected, { timeoutMs: 5000 });
    const pending = link.request((o) => encodeVersion(o), 10_000);
    tb = await tb.restart();
    const r = await pending;
    assert.equal(r.type === 'result' && r.code, 200);
    assert.ok(link.isConnected);
    assert.ok(states.includes('disconnected') && states.at(-1) === 'connected', states.join(','));
  });

  it('drops a connection whose peer stops answering heartbeats, and reconnects', async () => {
    const sockets: Socket[] = [];
    const server = createServer((s) => { sockets.push(s); s.on('error', () => {}); }); // accepts, never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as { port: number }).port;
    const link = new BrokerLink({ host: '127.0.0.1', port },
      { heartbeatIntervalMs: 50, heartbeatTimeoutMs: 100, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    cleanups.push(() => link.close());
    await link.whenConnected();
    await waitFor(() => sockets.length >= 3, { timeoutMs: 5000 });
  });

  it('gives up after maxAttempts and fails waiting requests', async () => {
    const port = await freePort();
    const tb = await startTestBroker({ 'system.serverPort': String(port) });
    const link = new BrokerLink({ host: '127.0.0.1', port }, { reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 3 } });
    await link.whenConnected();
    await tb.dispose();
    await waitFor(() => !link.isConnected, { timeoutMs: 5000 });
    await assert.rejects(link.request((o) => encodeVersion(o), 10_000), ConnectionError);
    await link.close();
  });

  it('keeps nothing alive after close: a script using it exits by itself', async () => {
    const tb = await startTestBroker();
    cleanups.push(() => tb.dispose());
    const script = `
      import { BrokerLink } from './sdk/network/broker-link.ts';
      import { encodeVersion } from './sdk/protocol/encode.ts';
      const link = new BrokerLink({ host: '127.0.0.1', port: ${tb.port} }, { heartbeatIntervalMs: 10 });
      await link.whenConnected();
      await link.request((o) => encodeVersion(o));
      await link.close();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(-1); }, 20_000);
      child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    assert.equal(code, 0);
  });
});
