import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ConnectionError, InvalidArgumentError, TimeoutError } from '../../sdk/errors.js';
import { encodeResult, encodeVersion } from '../../sdk/protocol/encode.js';
import { parseBrokerUrl } from '../../sdk/protocol/broker-url.js';
import { BrokerClient } from './broker-client.js';

describe('cli/cluster/broker-client', () => {
  let server: Server;
  let port = 0;
  const sockets = new Set<Socket>();
  /** Answers `version <opaque>` in reverse order of arrival, once two are in; ignores `quiet`. */
  before(async () => {
    server = createServer((s) => {
      sockets.add(s);
      let buf = '';
      const waiting: number[] = [];
      s.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
          const [cmd, opaque] = buf.slice(0, i).split(' ');
          buf = buf.slice(i + 2);
          if (cmd === 'version') waiting.push(Number(opaque));
          if (cmd === 'close') s.destroy();
        }
        if (waiting.length >= 2) for (const o of waiting.splice(0).reverse()) s.write(encodeResult(200, `v${o}`, o));
      });
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, 'close');
  });

  it('parses meta:// URLs, IPv6 in brackets and a slave suffix, and names a malformed one', () => {
    assert.deepEqual(parseBrokerUrl('meta://10.0.0.7:8123'), { host: '10.0.0.7', port: 8123 });
    assert.deepEqual(parseBrokerUrl('meta://[::1]:8123'), { host: '::1', port: 8123 });
    assert.deepEqual(parseBrokerUrl('meta://h:8123?slaveId=1'), { host: 'h', port: 8123 });
    for (const bad of ['http://h:1', 'meta://h', 'meta://h:0', 'meta://h:70000', '']) {
      assert.throws(() => parseBrokerUrl(bad), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('expected meta://host:port'));
    }
  });

  it('matches pipelined answers by opaque when they come back out of order', async () => {
    const c = new BrokerClient({ host: '127.0.0.1', port }, 5000);
    const [a, b] = await Promise.all([c.request((o) => encodeVersion(o)), c.request((o) => encodeVersion(o))]);
    assert.deepEqual([a.opaque, a.body.toString(), b.opaque, b.body.toString()], [1, 'v1', 2, 'v2']);
    c.close();
  });

  it('times out a request nobody answers, and fails the waiting ones when the connection drops', async () => {
    const c = new BrokerClient({ host: '127.0.0.1', port }, 200);
    await assert.rejects(c.request((o) => encodeVersion(o)), (e: unknown) => e instanceof TimeoutError && /within 200 ms/.test(e.message));
    const slow = new BrokerClient({ host: '127.0.0.1', port }, 5000);
    const pending = slow.request((o) => encodeVersion(o));
    await slow.request(() => Buffer.from('close\r\n')).catch(() => undefined);
    await assert.rejects(pending, (e: unknown) => e instanceof ConnectionError && /closed the connection/.test(e.message));
    c.close();
  });

  it('fails with ConnectionError naming the address when nothing listens', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const free = (probe.address() as { port: number }).port;
    probe.close();
    await once(probe, 'close');
    const c = new BrokerClient({ host: '127.0.0.1', port: free }, 5000);
    await assert.rejects(c.request((o) => encodeVersion(o)), (e: unknown) => e instanceof ConnectionError && e.message.includes(`127.0.0.1:${free}`));
  });
});
