/**
 * SDK producer throughput: `producer.send` through a real client (one connection), keeping `inFlight` sends
 * outstanding, the same record shape every time (round-robin over the topic's partitions). Compare with
 * bench/load-producer.ts (pre-encoded raw frames) on the same broker, with `connections: 1` and the same depth.
 *
 *   node --import tsx bench/sdk-producer.ts '{"port":8123,"topic":"bench","messages":500000,"size":1024,"inFlight":8192}'
 *
 * `mode: "sendAll"` drives the RxJS operator instead of `send`. Prints one JSON line: the result.
 */
import { performance } from 'node:perf_hooks';
import { range, map, lastValueFrom, count } from 'rxjs';
import { createClient } from '../sdk/client/client.js';
import { isMain } from './processes.js';

export interface SdkProducerOptions {
  readonly port: number;
  readonly host?: string;
  readonly topic: string;
  /** Messages to send (the first 5% are a warm-up, not timed). */
  readonly messages: number;
  /** Payload bytes. */
  readonly size: number;
  /** Sends outstanding at once. */
  readonly inFlight: number;
  /** Default 'send'. */
  readonly mode?: 'send' | 'sendAll';
}

export interface SdkProducerResult {
  /** Messages acked in the timed part. */
  readonly msgs: number;
  readonly seconds: number;
  readonly msgsPerSec: number;
  readonly clientCpuSec: number;
}

/** Runs the SDK producer against a broker at `port` and reports its throughput. */
export async function runSdkProducer(o: SdkProducerOptions): Promise<SdkProducerResult> {
  const client = await createClient({ serverUrl: `meta://${o.host ?? '127.0.0.1'}:${o.port}` });
  try {
    const producer = client.producer<Buffer>({ maxInFlight: o.inFlight });
    const value = Buffer.alloc(o.size, 0x61);
    const record = { topic: o.topic, value };
    await producer.send(record); // loads the topic's partitions
    const warmup = Math.floor(o.messages * 0.05);
    await (o.mode === 'sendAll' ? viaSendAll : viaSend)(producer, record, warmup, o.inFlight);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const timed = o.messages - warmup;
    await (o.mode === 'sendAll' ? viaSendAll : viaSend)(producer, record, timed, o.inFlight);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { msgs: timed, seconds, msgsPerSec: timed / seconds, clientCpuSec: (cpu.user + cpu.system) / 1e6 };
  } finally {
    await client.close();
  }
}

type Sender = { send(r: { topic: string; value: Buffer }): Promise<unknown> };

/** `n` sends with `depth` outstanding: each answer starts the next send. */
function viaSend(producer: Sender, record: { topic: string; value: Buffer }, n: number, depth: number): Promise<void> {
  if (n === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const onDone = (): void => {
      if (++done === n) resolve();
      else if (sent < n) issue();
    };
    const issue = (): void => {
      sent++;
      producer.send(record).then(onDone, reject);
    };
    for (let i = 0; i < Math.min(depth, n); i++) issue();
  });
}

async function viaSendAll(producer: { sendAll(o: { maxInFlight: number }): import('rxjs').OperatorFunction<{ topic: string; value: Buffer }, unknown> },
  record: { topic: string; value: Buffer }, n: number, depth: number): Promise<void> {
  if (n === 0) return;
  await lastValueFrom(range(0, n).pipe(map(() => record), producer.sendAll({ maxInFlight: depth }), count()));
}

if (isMain(import.meta.url)) {
  const o = JSON.parse(process.argv[2] ?? '{}') as Partial<SdkProducerOptions>;
  runSdkProducer({ topic: 'bench', messages: 500_000, size: 1024, inFlight: 8192, port: 8123, ...o }).then((r) => {
    process.stdout.write(`${JSON.stringify({ event: 'result', ...r })}\n`);
  }, (e: unknown) => {
    process.stdout.write(`${JSON.stringify({ event: 'fatal', error: String(e) })}\n`);
    process.exitCode = 1;
  });
}
