/**
 * Property test of both decoders over mutated golden frames (reliability.md T7, parser part).
 * FUZZ_RUNS (default 20000) and FUZZ_SEED (printed on every run) replay a run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../errors.js';
import { loadFrameFixtures } from './frame-fixtures.test-helper.js';
import { RequestDecoder } from './request-decoder.js';
import { ResponseDecoder } from './response-decoder.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 20000);
const seed = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const LIMITS = { maxLineBytes: 128, maxBodyBytes: 64 };
const TIME_LIMIT_MS = 20;

const corpus = loadFrameFixtures().map((f) => f.bytes);
const LENGTHS = ['0', '-1', '2147483647', String(LIMITS.maxBodyBytes + 1), '12345678901234567890'];

type Mutation = (b: Buffer) => Buffer;
const at = (b: Buffer, p: number): number => (b.length === 0 ? 0 : p % (b.length + 1));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([p, bit]): Mutation => (b) => {
    if (b.length === 0) return b;
    const c = Buffer.from(b);
    c[p % c.length]! ^= 1 << bit;
    return c;
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([p, v]): Mutation => (b) =>
    Buffer.concat([b.subarray(0, at(b, p)), Buffer.from([v]), b.subarray(at(b, p))])),
  fc.nat().map((p): Mutation => (b) => Buffer.concat([b.subarray(0, at(b, p)), b.subarray(at(b, p) + 1)])),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 16 })).map(([p, n]): Mutation => (b) =>
    Buffer.concat([b.subarray(0, at(b, p) + n), b.subarray(at(b, p))])),
  fc.nat().map((p): Mutation => (b) => b.subarray(0, at(b, p))),
  // A numeric token of the header (a length, most often) set to an edge value.
  fc.tuple(fc.nat(), fc.constantFrom(...LENGTHS)).map(([p, v]): Mutation => (b) => {
    const eol = b.indexOf('\r\n');
    const line = (eol < 0 ? b : b.subarray(0, eol)).toString('latin1').split(' ');
    const numeric = line.map((t, i) => (/^-?\d+$/.test(t) ? i : -1)).filter((i) => i >= 0);
    if (numeric.length === 0) return b;
    line[numeric[p % numeric.length]!] = v;
    return Buffer.concat([Buffer.from(line.join(' '), 'latin1'), eol < 0 ? Buffer.alloc(0) : b.subarray(eol)]);
  }),
  fc.integer({ min: 0, max: 255 }).map((v): Mutation => (b) => Buffer.concat([Buffer.from([v]), b.subarray(1)])),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => a.map((x) => x | 0x80)))
    .map(([p, hi]): Mutation => (b) => Buffer.concat([b.subarray(0, at(b, p)), hi, b.subarray(at(b, p))])),
  fc.constant<Mutation>((b) => Buffer.concat([b, Buffer.alloc(LIMITS.maxLineBytes * 3, 0x78)])),
  fc.uint8Array({ maxLength: 300 }).map((r): Mutation => () => Buffer.from(r)),
);

const input = fc.record({
  frames: fc.array(fc.constantFrom(...corpus), { minLength: 1, maxLength: 3 }),
  mutations: fc.array(mutation, { minLength: 0, maxLength: 3 }),
  cuts: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }),
  response: fc.boolean(),
});

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (const n of cuts) {
    if (pos >= buf.length) break;
    out.push(buf.subarray(pos, pos + n));
    pos += n;
  }
  if (pos < buf.length) out.push(buf.subarray(pos));
  return out;
}

/** Feeds the chunks; returns the error thrown, if any, checking the invariants on the way. */
function feed(d: RequestDecoder | ResponseDecoder, chunks: Buffer[]): unknown {
  try {
    for (const c of chunks) {
      d.push(c);
      for (let f = d.next(); f !== undefined; f = d.next()) {
        if ('body' in f) assert.ok(f.body.length <= LIMITS.maxBodyBytes, 'body beyond maxBodyBytes');
      }
      assert.ok(d.bufferedBytes <= LIMITS.maxLineBytes + LIMITS.maxBodyBytes, `buffered ${d.bufferedBytes}`);
    }
    return undefined;
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return e;
  }
}

function timed(run: () => unknown): { ms: number; error: unknown } {
  const t0 = performance.now();
  const error = run();
  return { ms: performance.now() - t0, error };
}

describe('protocol/decoder fuzz', () => {
  it(`throws only ProtocolError, stays bounded and fast, and recovers after reset() (seed ${seed}, ${runs} runs)`, () => {
    console.log(`decoder fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
    let slowest = 0;
    fc.assert(fc.property(input, ({ frames, mutations, cuts, response }) => {
      const bytes = mutations.reduce<Buffer>((b, m) => m(b), Buffer.concat(frames));
      const chunks = split(bytes, cuts);
      const make = (): RequestDecoder | ResponseDecoder =>
        (response ? new ResponseDecoder(LIMITS) : new RequestDecoder(LIMITS));
      const d = make();
      const first = timed(() => feed(d, chunks));
      const error = first.error;
      let ms = first.ms;
      // A GC pause or a descheduled process is not the input's cost: a slow input must be slow twice.
      if (ms >= TIME_LIMIT_MS) ms = timed(() => feed(make(), chunks)).ms;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < TIME_LIMIT_MS, `input of ${bytes.length} bytes took ${ms.toFixed(1)} ms`);
      if (error !== undefined) {
        assert.ok(error instanceof ProtocolError, `threw ${String(error)}`);
        assert.ok(!error.message.startsWith('internal decoder error'), error.message);
        assert.ok(error.state.length > 0);
      }
      d.reset();
      d.push(response ? Buffer.from('result 200 2 9\r\nok') : Buffer.from('version 9\r\n'));
      const frame = d.next();
      assert.equal(frame?.type, response ? 'result' : 'version');
    }), { numRuns: runs, seed });
    console.log(`decoder fuzz: slowest input ${slowest.toFixed(2)} ms`);
  });
});
