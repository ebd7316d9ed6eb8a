/**
 * Wire codec throughput on one core: decoding pipelined `put` frames (100 B and 1 KiB bodies) delivered in
 * 64 KiB chunks, decoding `result` replies, and encoding puts. Prints figures; asserts nothing.
 *
 *   node --import tsx bench/protocol-codec.ts
 */
import { encodePut, encodeResult } from '../sdk/protocol/encode.js';
import { RequestDecoder } from '../sdk/protocol/request-decoder.js';
import { ResponseDecoder } from '../sdk/protocol/response-decoder.js';

const CHUNK = 64 * 1024;
const DURATION_MS = Number(process.env['BENCH_MS'] ?? 2000);

function chunked(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  // Copies, as a socket hands over fresh buffers.
  for (let p = 0; p < stream.length; p += CHUNK) out.push(Buffer.from(stream.subarray(p, p + CHUNK)));
  return out;
}

/** Runs `round` (returning frames handled) repeatedly for DURATION_MS after a warm-up; returns frames/s. */
function measure(round: () => number): number {
  const warm = performance.now() + 300;
  while (performance.now() < warm) round();
  let frames = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < DURATION_MS) { frames += round(); t = performance.now(); }
  return frames / ((t - t0) / 1000);
}

function decodeRound(decoder: RequestDecoder | ResponseDecoder, chunks: Buffer[]): number {
  let n = 0;
  let bytes = 0;
  for (const c of chunks) {
    decoder.push(c);
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) { n++; if ('body' in f) bytes += f.body.length; }
  }
  if (bytes < 0) throw new Error('unreachable');
  return n;
}

function putStream(bodySize: number, count: number, topics: number): Buffer {
  const body = Buffer.alloc(bodySize, 0x61);
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    frames.push(encodePut({ topic: `bench-topic-${i % topics}`, partition: i % 8, flag: 0, checksum: 123456789, opaque: i, body }));
  }
  return Buffer.concat(frames);
}

const rows: [string, number, string][] = [];
const row = (name: string, perSec: number, note = ''): void => {
  rows.push([name, perSec, note]);
  console.log(`${name.padEnd(52)} ${(perSec / 1e6).toFixed(2).padStart(7)} M frames/s  ${note}`);
};

for (const [size, topics] of [[100, 1], [100, 8], [1024, 1]] as const) {
  const stream = putStream(size, 20000, topics);
  const chunks = chunked(stream);
  const decoder = new RequestDecoder();
  const rate = measure(() => decodeRound(decoder, chunks));
  row(`decode put ${size} B, ${topics} topic(s), 64 KiB chunks`, rate,
    `${((rate * stream.length) / 20000 / 1e6).toFixed(0)} MB/s`);
}

{
  const frames: Buffer[] = [];
  for (let i = 0; i < 20000; i++) frames.push(encodeResult(200, `70383526408970${i % 100} 3 ${i * 120}`, i));
  const chunks = chunked(Buffer.concat(frames));
  const decoder = new ResponseDecoder();
  row('decode result (put acks), 64 KiB chunks', measure(() => decodeRound(decoder, chunks)));
}

{
  const body = Buffer.alloc(100, 0x61);
  let i = 0;
  row('encode put 100 B', measure(() => {
    for (let k = 0; k < 1000; k++) encodePut({ topic: 'bench-topic', partition: 1, flag: 0, checksum: 1, opaque: i++ & 0x7fffffff, body });
    return 1000;
  }));
}

{
  const stream = putStream(100, 2000, 1);
  const decoder = new RequestDecoder();
  const bytes: Buffer[] = [];
  for (let p = 0; p < stream.length; p += 7) bytes.push(Buffer.from(stream.subarray(p, p + 7)));
  row('decode put 100 B, 7-byte chunks (worst case)', measure(() => decodeRound(decoder, bytes)));
}

console.log(JSON.stringify({ bench: 'protocol-codec', node: process.version, rows: rows.map(([name, perSec, note]) => ({ name, perSec: Math.round(perSec), note })) }));
