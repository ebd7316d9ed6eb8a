/**
 * A tiny, safe evaluator for the arithmetic MetaQ accepts in numeric `server.ini` values (MetaQ runs them
 * through Aviator, so `maxSegmentSize=1024*1024*1024` is legal). Never `eval`.
 *
 * ```
 * expr   := term (('+' | '-') term)*
 * term   := unary (('*' | '/' | '%') unary)*
 * unary  := ('+' | '-') unary | atom
 * atom   := number | '(' expr ')'
 * number := digits ['.' digits] | digits '_'-separated (1_000)
 * ```
 * Integers divide as Java longs do (truncating toward zero), so `10/4` is 2 as in MetaQ; a decimal literal
 * anywhere makes the whole expression decimal (`0.9`, `19/20.0`). Results must stay within ±2^53.
 */
import { ConfigError } from '../../sdk/errors.js';

const MAX_LENGTH = 256;
const MAX_DEPTH = 32;

/** Evaluates `text`; throws ConfigError describing the first problem (the caller adds the key's context). */
export function evaluateArithmetic(text: string): number {
  if (text.length > MAX_LENGTH) throw new ConfigError(`expression longer than ${MAX_LENGTH} characters`);
  const parser = new Parser(text);
  const value = parser.parse();
  if (!Number.isFinite(value) || Math.abs(value) > Number.MAX_SAFE_INTEGER) {
    throw new ConfigError(`result ${value} is out of range`);
  }
  return value;
}

class Parser {
  private pos = 0;
  private depth = 0;
  /** Set once any decimal literal is seen: then '/' is real division throughout. */
  private readonly decimal: boolean;

  constructor(private readonly text: string) {
    this.decimal = /\d\.\d/.test(text);
  }

  parse(): number {
    const value = this.expr();
    this.skipSpace();
    if (this.pos < this.text.length) this.fail(`unexpected '${this.text[this.pos]}'`);
    return value;
  }

  private expr(): number {
    let value = this.term();
    for (;;) {
      const op = this.peekOp('+-');
      if (op === undefined) return value;
      const right = this.term();
      value = checked(op === '+' ? value + right : value - right, this);
    }
  }

  private term(): number {
    let value = this.unary();
    for (;;) {
      const op = this.peekOp('*/%');
      if (op === undefined) return value;
      const right = this.unary();
      if (op === '*') {
        value = checked(value * right, this);
      } else {
        if (right === 0) this.fail('division by zero');
        if (op === '/') value = this.decimal ? value / right : Math.trunc(value / right);
        else value = value % right;
      }
    }
  }

  private unary(): number {
    const op = this.peekOp('+-');
    if (op === undefined) return this.atom();
    if (++this.depth > MAX_DEPTH) this.fail('nested too deeply');
    const value = this.unary();
    this.depth--;
    return op === '-' ? -value : value;
  }

  private atom(): number {
    this.skipSpace();
    if (this.text[this.pos] === '(') {
      if (++this.depth > MAX_DEPTH) this.fail('nested too deeply');
      this.pos++;
      const value = this.expr();
      this.skipSpace();
      if (this.text[this.pos] !== ')') this.fail("missing ')'");
      this.pos++;
      this.depth--;
      return value;
    }
    const match = /^(?:\d+(?:_\d+)*)(?:\.\d+)?/.exec(this.text.slice(this.pos));
    if (match === null) {
      this.fail(this.pos >= this.text.length ? 'unexpected end' : `unexpected '${this.text[this.pos]}'`);
    }
    this.pos += match[0].length;
    const value = Number(match[0].replaceAll('_', ''));
    if (!Number.isSafeInteger(value) && Number.isInteger(value)) this.fail(`number ${match[0]} is too large`);
    return value;
  }

  private peekOp(ops: string): string | undefined {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === undefined || !ops.includes(c)) return undefined;
    this.pos++;
    return c;
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  fail(reason: string): never {
    throw new ConfigError(`${reason} at column ${this.pos + 1}`);
  }
}

function checked(value: number, parser: Parser): number {
  if (Math.abs(value) > Number.MAX_SAFE_INTEGER) parser.fail('overflow');
  return value;
}
