/**
 * SDK producer throughput: `producer.send` (or the `sendAll` operator) through a real client, one connection,
 * `inFlight` sends outstanding, round-robin over the topic's partitions. bench/run.ts compares it with
 * bench/load-producer.ts (pre-encoded raw frames) on the same broker with one connection and the same depth.
 * Run as a process; prints `window-start`, `window-end` and `result` JSON lines like the load generators:
 *
 *   node --import tsx bench/sdk-producer.ts '{"port":8123,"topic":"bench","payloadSize":1024,"inFlight":8192}'
 */
import { performance } from 'node:perf_hooks';
import { Subject, type Subscription } from 'rxjs';
import { createClient } from '../sdk/client/client.js';
import type { Producer } from '../sdk/producer/producer.js';
import { optionsFromArgv } from './load-driver.js';
import { isMain } from './processes.js';

export interface SdkProducerOptions {
  readonly host: string;
  readonly port: number;
  readonly topic: string;
  readonly payloadSize: number;
  /** Sends outstanding at once. */
  readonly inFlight: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly mode: 'send' | 'sendAll';
}

const DEFAULTS: SdkProducerOptions = {
  host: '127.0.0.1', port: 8123, topic: 'bench', payloadSize: 1024, inFlight: 8192, warmupMs: 2000, measureMs: 8000,
  mode: 'send',
};

type Record = { readonly topic: string; readonly value: Buffer };

/** Keeps `depth` sends outstanding until stopped; `onAck` runs per answer. */
function driveSend(producer: Producer<Buffer>, record: Record, depth: number, onAck: () => void, onError: (e: unknown) => void):
() => void {
  let stopped = false;
  const issue = (): void => {
    producer.send(record).then(() => {
      onAck();
      if (!stopped) issue();
    }, onError);
  };
  for (let i = 0; i < depth; i++) issue();
  return () => { stopped = true; };
}

/**
 * An endless stream through `sendAll`, closed loop: `depth` records first, then one more per result, so the
 * operator always has `depth` sends to pipeline and no unbounded backlog builds up in front of it.
 */
function driveSendAll(producer: Producer<Buffer>, record: Record, depth: number, onAck: () => void, onError: (e: unknown) => void):
() => void {
  const source = new Subject<Record>();
  const s: Subscription = source.pipe(producer.sendAll({ maxInFlight: depth })).subscribe({
    next: () => {
      onAck();
      source.next(record);
    },
    error: onError,
  });
  for (let i = 0; i < depth; i++) source.next(record);
  return () => s.unsubscribe();
}

/** Runs the SDK producer for warm-up + window and emits the figures of the window. */
export async function runSdkProducer(o: SdkProducerOptions, emit: (line: object) => void): Promise<void> {
  const client = await createClient({ serverUrl: `meta://${o.host}:${o.port}` });
  try {
    const producer = client.producer<Buffer>({ maxInFlight: o.inFlight });
    const record = { topic: o.topic, value: Buffer.alloc(o.payloadSize, 0x61) };
    await producer.send(record); // loads the topic's partitions
    let acked = 0;
    let firstError: string | null = null;
    const stop = (o.mode === 'sendAll' ? driveSendAll : driveSend)(producer, record, o.inFlight, () => { acked++; },
      (e) => { firstError ??= String(e); });
    await new Promise((r) => setTimeout(r, o.warmupMs));
    const a0 = acked;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    emit({ event: 'window-start' });
    await new Promise((r) => setTimeout(r, o.measureMs));
    emit({ event: 'window-end' });
    const seconds = (performance.now() - t0) / 1000;
    const msgs = acked - a0;
    const cpu = process.cpuUsage(cpu0);
    stop();
    await producer.close();
    emit({
      event: 'result', msgs, seconds, msgsPerSec: msgs / seconds, mbPerSec: (msgs * o.payloadSize) / seconds / 1e6,
      clientCpuSec: (cpu.user + cpu.system) / 1e6, correct: firstError === null, firstError,
    });
  } finally {
    await client.close();
  }
}

if (isMain(import.meta.url)) {
  const emit = (line: object): void => { process.stdout.write(`${JSON.stringify(line)}\n`); };
  runSdkProducer(optionsFromArgv(DEFAULTS), emit).catch((e: unknown) => {
    emit({ event: 'fatal', error: String(e) });
    process.exitCode = 1;
  });
}
