/**
 * Consume catch-up through the SDK: `consumer.messages$(topic)` from the first offset of every partition, each
 * delivery acked at once (synchronously, in `next`), until `messages` have arrived. The same work as
 * bench/consume.ts (the raw protocol client) plus everything the SDK adds: CRC of every record, Message and
 * Delivery objects, the ack watermark, the RxJS emission, periodic offset commits. Run as a process:
 *
 *   node --import tsx bench/sdk-consumer.ts '{"port":8123,"topic":"bench","expected":[1000,1000]}'
 *
 * Prints `window-start`, `window-end` and `result` JSON lines like bench/consume.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createClient } from '../sdk/client/client.js';
import { optionsFromArgv } from './load-driver.js';
import { isMain } from './processes.js';

export interface SdkConsumerOptions {
  readonly host?: string;
  readonly port: number;
  readonly topic: string;
  readonly group: string;
  /** Messages to read in total (over all partitions). */
  readonly messages: number;
  readonly timeoutMs?: number;
  /** Called once the subscription is made and once the last message arrived (the measured window). */
  readonly onWindow?: (edge: 'start' | 'end') => void;
}

export interface SdkConsumerResult {
  readonly msgs: number;
  /** Bytes of whole records (headers included), as bench/consume.ts counts them. */
  readonly bytes: number;
  readonly seconds: number;
  readonly clientCpuSec: number;
  readonly error: string | null;
}

/** Reads `messages` messages of `topic` with a fresh group through the SDK; resolves with the figures. */
export async function runSdkConsumer(o: SdkConsumerOptions): Promise<SdkConsumerResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'metaq-bench-sdk-consumer-'));
  const client = await createClient({
    serverUrl: `meta://${o.host ?? '127.0.0.1'}:${o.port}`, offsetsFile: path.join(dir, 'offsets.json'),
    recoverDir: path.join(dir, 'recover'), logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  try {
    const consumer = client.consumer({ group: o.group, startFrom: 'earliest' });
    let msgs = 0;
    let bytes = 0;
    let error: string | null = null;
    let t1 = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    o.onWindow?.('start');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        error = `timed out after ${msgs} of ${o.messages} messages`;
        resolve();
      }, o.timeoutMs ?? 120_000);
      const sub = consumer.messages$(o.topic).subscribe({
        next: (d) => {
          const m = d.message;
          bytes += m.nextOffset - m.offset;
          d.ack();
          if (++msgs === o.messages) {
            t1 = performance.now();
            clearTimeout(timer);
            resolve();
          }
        },
        error: (err: unknown) => {
          error = (err as Error).message;
          clearTimeout(timer);
          resolve();
        },
      });
      void sub;
    });
    if (t1 === 0) t1 = performance.now();
    o.onWindow?.('end');
    const cpu = process.cpuUsage(cpu0);
    await consumer.close();
    return { msgs, bytes, seconds: (t1 - t0) / 1000, clientCpuSec: (cpu.user + cpu.system) / 1e6, error };
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface CliOptions {
  readonly host: string;
  readonly port: number;
  readonly topic: string;
  readonly group: string;
  /** Messages per partition, as bench/consume.ts takes them. */
  readonly expected: readonly number[];
  readonly timeoutMs: number;
}

const DEFAULTS: CliOptions = {
  host: '127.0.0.1', port: 8123, topic: 'bench', group: 'bench-sdk-consume', expected: [], timeoutMs: 120_000,
};

if (isMain(import.meta.url)) {
  const emit = (line: object): void => {
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const opts = optionsFromArgv(DEFAULTS);
  const messages = opts.expected.reduce((a, b) => a + b, 0);
  runSdkConsumer({ ...opts, messages, onWindow: (edge) => emit({ event: `window-${edge}` }) }).then((r) => {
    emit({
      event: 'result', msgs: r.msgs, bytes: r.bytes, seconds: r.seconds, msgsPerSec: r.msgs / r.seconds,
      mbPerSec: r.bytes / r.seconds / 1e6, errors: r.error === null ? 0 : 1, firstError: r.error,
      correct: r.error === null && r.msgs === messages, clientCpuSec: r.clientCpuSec,
    });
    process.exitCode = r.error === null ? 0 : 2;
  }, (err: unknown) => {
    emit({ event: 'fatal', error: (err as Error).message });
    process.exitCode = 1;
  });
}
