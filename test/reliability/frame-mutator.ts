/**
 * Seeded mutations of golden MetaQ frames for the live fuzz (T7): bit flips, byte insert/delete/duplicate,
 * truncation, length fields set to edge values, wrong checksums, unknown commands, non-ASCII header bytes, overlong
 * headers without CRLF and pure random bytes.
 */
import type { seededRandom } from './history.js';

export type Rng = ReturnType<typeof seededRandom>;

/** Length values that stress the framing: empty, negative, int32 edges, just over the limit, absurd. */
const LENGTHS = ['0', '-1', '1', '2147483647', '2147483648', '1048557', '99999999999999999999', '-2147483649'];
/** Values for any numeric token (partition, flag, checksum, opaque, offset, maxSize). */
const NUMBERS = [...LENGTHS, '9223372036854775807', '9223372036854775808', '-9223372036854775808', '', '+1', '007',
  '1e3', '0x10', '1.5', '\u0661'];
const COMMANDS = ['puts', 'GET', 'pu', 'vers1on', 'sync2', 'offse', 'transaction2', 'result', 'value', 'quit2', '\x00put'];
const CRLF = Buffer.from('\r\n');

/** Seeded mutations of the golden frames; each frame gets 1-3 of them, named for the report. */
export class FrameMutator {
  private readonly ops: [string, (b: Buffer) => Buffer][] = [
    ['bitflip', (b) => this.bitflip(b)],
    ['insert', (b) => splice(b, this.pos(b), 0, this.bytes(this.rng.int(1, 8)))],
    ['delete', (b) => splice(b, this.pos(b), this.rng.int(1, 8), Buffer.alloc(0))],
    ['duplicate', (b) => { const at = this.pos(b); return splice(b, at, 0, b.subarray(at, at + this.rng.int(1, 16))); }],
    ['truncate', (b) => b.subarray(0, this.rng.int(1, Math.max(1, b.length - 1)))],
    ['length', (b) => this.setToken(b, lengthTokenIndex(b), LENGTHS)],
    ['number', (b) => this.setToken(b, -1, NUMBERS)],
    ['command', (b) => this.setToken(b, 0, COMMANDS)],
    ['non-ascii', (b) => splice(b, this.rng.int(0, headerEnd(b)), 0, this.bytes(this.rng.int(1, 4)).map((x) => x | 0x80))],
    ['long-line', (b) => Buffer.concat([b.subarray(0, 4), Buffer.alloc(this.rng.int(4097, 6000), 0x61 + this.rng.int(0, 25))])],
    ['random', () => this.bytes(this.rng.int(1, 512))],
    ['crlf', (b) => this.crlf(b)],
    ['tokens', (b) => this.tokens(b)],
  ];

  constructor(private readonly seeds: readonly Buffer[], private readonly rng: Rng) {}

  /** A mutated frame: 40% keep the framing valid (fields and body changed, length fixed up), so they reach the handlers. */
  next(): { bytes: Buffer; name: string } {
    const seed = this.seed();
    if (this.rng.next() < 0.4) return this.field(seed);
    let bytes = seed;
    const names: string[] = [];
    for (let n = this.rng.next() < 0.7 ? 1 : this.rng.int(2, 3); n > 0; n--) {
      const [name, op] = this.ops[this.rng.int(0, this.ops.length - 1)]!;
      bytes = op(bytes);
      names.push(name);
    }
    return { bytes, name: names.join('+') };
  }

  /** An unmutated request frame (not counted as fuzz): keeps connections and partitions busy between mutations. */
  valid(): Buffer {
    for (;;) {
      const b = this.seed();
      const command = b.subarray(0, 8).toString('latin1').split(' ')[0];
      if (command !== 'result' && command !== 'value' && command !== 'quit' && b.includes(CRLF)) return b;
    }
  }

  private seed(): Buffer {
    return this.seeds[this.rng.int(0, this.seeds.length - 1)]!;
  }

  /** Changes header fields (never the command or the length) and possibly the body, then fixes the length. */
  private field(b: Buffer): { bytes: Buffer; name: string } {
    const end = headerEnd(b);
    if (end === b.length) return { bytes: this.bitflip(b), name: 'bitflip' };
    const tokens = b.subarray(0, end).toString('latin1').split(' ');
    const lengthAt = lengthTokenIndex(b);
    let body = b.subarray(end + 2);
    let name = 'field';
    if (lengthAt > 0 && this.rng.next() < 0.3) {
      body = this.rng.next() < 0.5 ? this.bitflip(body) : this.bytes(this.rng.int(0, 4096));
      name = 'field-body';
    } else if (tokens.length > 1) {
      const candidates = tokens.map((_, i) => i).filter((i) => i > 0 && i !== lengthAt);
      const i = candidates[this.rng.int(0, candidates.length - 1)] ?? tokens.length - 1;
      tokens[i] = this.rng.next() < 0.6 ? NUMBERS[this.rng.int(0, NUMBERS.length - 1)]! || '0' : this.word();
    }
    if (lengthAt > 0 && lengthAt < tokens.length) tokens[lengthAt] = String(body.length);
    return { bytes: Buffer.concat([Buffer.from(tokens.join(' '), 'latin1'), CRLF, body]), name };
  }

  /** A token of printable bytes, sometimes UTF-8 or path-like. */
  private word(): string {
    const words = ['test', 'meta-test', 'orders', 'fuzz-canary', 'x'.repeat(this.rng.int(1, 300)), '..', 'a/b', '主题',
      'TX:1:2', String(this.rng.int(-5, 5))];
    return Buffer.from(words[this.rng.int(0, words.length - 1)]!, 'utf8').toString('latin1');
  }

  private pos(b: Buffer): number {
    return this.rng.int(0, b.length);
  }

  private bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.rng.int(0, 255);
    return out;
  }

  private bitflip(b: Buffer): Buffer {
    const out = Buffer.from(b);
    for (let n = this.rng.int(1, 4); n > 0 && out.length > 0; n--) {
      const i = this.rng.int(0, out.length - 1);
      out[i] = out[i]! ^ (1 << this.rng.int(0, 7));
    }
    return out;
  }

  /** Replaces header token `index` (-1: a random numeric one) with one of `values`. */
  private setToken(b: Buffer, index: number, values: readonly string[]): Buffer {
    const end = headerEnd(b);
    const tokens = b.subarray(0, end).toString('latin1').split(' ');
    if (index < 0) {
      const numeric = tokens.map((t, i) => (/^-?\d+$/.test(t) ? i : -1)).filter((i) => i >= 0);
      index = numeric.length === 0 ? tokens.length - 1 : numeric[this.rng.int(0, numeric.length - 1)]!;
    }
    tokens[Math.min(index, tokens.length - 1)] = values[this.rng.int(0, values.length - 1)]!;
    return Buffer.concat([Buffer.from(tokens.join(' '), 'latin1'), b.subarray(end)]);
  }

  private crlf(b: Buffer): Buffer {
    const end = headerEnd(b);
    if (end === b.length) return Buffer.concat([b, CRLF]);
    switch (this.rng.int(0, 2)) {
      case 0: return splice(b, end, 2, Buffer.from('\n'));
      case 1: return splice(b, end, 2, Buffer.from('\r'));
      default: return splice(b, this.rng.int(0, end), 0, CRLF);
    }
  }

  private tokens(b: Buffer): Buffer {
    const end = headerEnd(b);
    const tokens = b.subarray(0, end).toString('latin1').split(' ');
    const i = this.rng.int(0, tokens.length - 1);
    switch (this.rng.int(0, 2)) {
      case 0: tokens.splice(i, 1); break;
      case 1: tokens.splice(i, 0, String(this.rng.int(0, 99))); break;
      default: tokens[i] = ` ${tokens[i]!}`;
    }
    return Buffer.concat([Buffer.from(tokens.join(' '), 'latin1'), b.subarray(end)]);
  }
}

/** Index of the first CRLF, or the length when there is none. */
function headerEnd(b: Buffer): number {
  const i = b.indexOf(CRLF);
  return i < 0 ? b.length : i;
}

/** Which header token holds the body length: put/sync 3, result 2, value 1; -1 (any numeric) otherwise. */
function lengthTokenIndex(b: Buffer): number {
  const command = b.subarray(0, 8).toString('latin1').split(' ')[0];
  return command === 'put' || command === 'sync' ? 3 : command === 'result' ? 2 : command === 'value' ? 1 : -1;
}

function splice(b: Buffer, at: number, remove: number, insert: Uint8Array): Buffer {
  return Buffer.concat([b.subarray(0, at), insert, b.subarray(Math.min(b.length, at + remove))]);
}
