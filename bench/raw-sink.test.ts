import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RecordCheck, checkRecord } from '../sdk/protocol/record.js';
import { decimalLength, writeDecimal } from './ascii.js';
import { parseInt64 } from '../sdk/protocol/line-tokens.js';
import { runConsume } from './consume.js';
import { runLoad, type ReplySink } from './load-driver.js';
import { metaqPutProtocol, parseResults } from './load-producer.js';
import { parseNatsReplies } from './nats-publisher.js';
import { startRawSink } from './raw-sink.js';

const quiet = (): void => undefined;

function recorder(): ReplySink & { acks: number[]; fails: string[]; written: string[] } {
  const acks: number[] = [];
  const fails: string[] = [];
  const written: string[] = [];
  return {
    acks, fails, written,
    ack: (slot) => acks.push(slot),
    fail: (_slot, what) => fails.push(what),
    write: (b) => written.push(b.toString()),
  };
}

/** Feeds `bytes` to a parser one byte at a time, carrying the unconsumed tail like the driver does. */
function feedBytewise(bytes: Buffer, parse: (b: Buffer, s: ReplySink) => number, sink: ReplySink): number {
  let carry = Buffer.alloc(0);
  for (let i = 0; i < bytes.length; i++) {
    const buf = Buffer.concat([carry, bytes.subarray(i, i + 1)]);
    carry = buf.subarray(parse(buf, sink));
  }
  return carry.length;
}

describe('bench/ascii', () => {
  it('writes and parses decimals of every magnitude, negative ones included', () => {
    const buf = Buffer.alloc(32);
    for (const n of [0, 7, 10, 99, 100, 123456789, 2 ** 40 + 3, -1, -2147483648]) {
      const end = writeDecimal(buf, 0, n);
      assert.equal(end, decimalLength(n));
      assert.equal(buf.toString('latin1', 0, end), String(n));
      assert.equal(parseInt64(buf, 0, end), n);
    }
    assert.ok(Number.isNaN(parseInt64(Buffer.from('12a'), 0, 3)));
    assert.ok(Number.isNaN(parseInt64(Buffer.from('-'), 0, 1)));
  });
});

describe('bench/load-producer reply parser', () => {
  it('acks result 200 frames even when they arrive one byte at a time', () => {
    const sink = recorder();
    const left = feedBytewise(Buffer.from('result 200 7 3\r\n1 0 200result 200 0 4\r\nresult 500 4 5\r\nboom'), parseResults, sink);
    assert.equal(left, 0);
    assert.deepEqual(sink.acks, [3, 4]);
    assert.deepEqual(sink.fails, ['result 500: boom']);
  });

  it('rejects frames that are not results', () => {
    for (const bad of ['value 5 1\r\nhello', 'result x 0 1\r\n', 'result 200 1\r\n', 'result 200 -1 1\r\n']) {
      assert.throws(() => parseResults(Buffer.from(bad), recorder()), /result/, bad);
    }
  });
});

describe('bench/nats-publisher reply parser', () => {
  it('acks PubAcks, fails errors and no-responders, and answers PING', () => {
    const ack = '{"stream":"bench","seq":1}';
    const err = '{"error":{"code":503}}';
    const hdr = 'NATS/1.0 503\r\n\r\n';
    const text = `INFO {"x":1}\r\nMSG _INBOX.0.17 1 ${ack.length}\r\n${ack}\r\nPING\r\n` +
      `MSG _INBOX.0.18 1 ${err.length}\r\n${err}\r\nHMSG _INBOX.0.19 1 ${hdr.length} ${hdr.length}\r\n${hdr}\r\n+OK\r\n`;
    const sink = recorder();
    assert.equal(feedBytewise(Buffer.from(text), parseNatsReplies, sink), 0);
    assert.deepEqual(sink.acks, [17]);
    assert.equal(sink.fails.length, 2);
    assert.deepEqual(sink.written, ['PONG\r\n']);
  });
});

for (const mode of ['group', 'interval'] as const) {
  describe(`bench/raw-sink in ${mode} mode`, () => {
    let dir = '';
    let server: net.Server;
    let port = 0;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'metaq-bench-test-'));
      server = await startRawSink({ host: '127.0.0.1', port: 0, dataDir: dir, mode, intervalMs: 50 });
      const addr = server.address();
      port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    });
    after(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    });

    it('stores every acked put as a valid record and serves them all back to the consumer', async () => {
      const opts = {
        host: '127.0.0.1', port, topic: 't', connections: 3, inFlight: 40, payloadSize: 300, partitions: 5,
        warmupMs: 50, measureMs: 250, drainTimeoutMs: 10000, reportPartitions: true,
      };
      const r = await runLoad(opts, metaqPutProtocol(opts), quiet);
      assert.equal(r.firstError, null);
      assert.ok(r.correct && r.acked === r.sent && r.msgs > 0, JSON.stringify(r));
      const per = r.perPartition ?? [];
      assert.equal(per.reduce((a, b) => a + b, 0), r.acked);
      for (let p = 0; p < opts.partitions; p++) {
        const file = await readFile(path.join(dir, `${p}.log`));
        let pos = 0;
        let n = 0;
        while (pos < file.length) {
          const size = checkRecord(file, pos, file.length, 1 << 20, true);
          assert.ok(size > 0, `partition ${p} record at ${pos}: check ${size} (${RecordCheck.BAD_CRC} = bad crc)`);
          pos += size;
          n++;
        }
        assert.equal(n, per[p], `partition ${p} holds ${n} records, ${per[p]} acked`);
      }
      const c = await runConsume({ host: '127.0.0.1', port, topic: 't', group: 'g', expected: per, maxSize: 4096,
        timeoutMs: 10000 }, quiet);
      assert.equal(c.firstError, null);
      assert.equal(c.msgs, r.acked);
    });

    it('makes the consumer fail when it expects more messages than were stored', async () => {
      const c = await runConsume({ host: '127.0.0.1', port, topic: 't', group: 'g', expected: [0, 0, 0, 0, 0, 1e9],
        maxSize: 4096, timeoutMs: 10000 }, quiet);
      assert.equal(c.correct, false);
      assert.match(c.firstError ?? '', /end of log/);
    });
  });
}
