/**
 * Typed, validated reads of one configuration section, with errors that name the key, the value, where it
 * came from (`file:line` or the override) and what was expected.
 */
import { ConfigError } from '../../sdk/errors.js';
import type { KeySpec } from './config-keys.js';
import { evaluateArithmetic } from './expression.js';

/** A value and where it came from: `server.ini:12` or `override system.serverPort`. */
export interface RawValue {
  readonly value: string;
  readonly origin: string;
}

/** A section before validation: the file's entries with the overrides applied on top. */
export interface RawSection {
  readonly name: string;
  readonly origin: string;
  readonly entries: Map<string, RawValue>;
}

export class SectionReader {
  constructor(
    private readonly section: RawSection | undefined,
    readonly name: string,
    private readonly specs: Readonly<Record<string, KeySpec>>,
  ) {}

  /** The raw value of `key`, or undefined when it is absent or blank (blank means "not set", as in MetaQ). */
  raw(key: string): RawValue | undefined {
    const v = this.section?.entries.get(key);
    return v === undefined || v.value === '' ? undefined : v;
  }

  /** An integer key; absent → `fallback`, else the spec's default, else ConfigError "required". */
  int(key: string, fallback?: number): number {
    return this.read(key, fallback, (raw, spec) => {
      const n = this.arithmetic(key, raw, spec);
      if (!Number.isInteger(n)) this.bad(key, raw, `an integer${range(spec)}`);
      this.check(key, raw, spec, n);
      return n;
    });
  }

  /** A decimal number key (ratios). */
  number(key: string, fallback?: number): number {
    return this.read(key, fallback, (raw, spec) => {
      const n = this.arithmetic(key, raw, spec);
      this.check(key, raw, spec, n);
      return n;
    });
  }

  bool(key: string, fallback?: boolean): boolean {
    return this.read(key, fallback, (raw) => {
      const v = raw.value.toLowerCase();
      if (v === 'true') return true;
      if (v === 'false') return false;
      return this.bad(key, raw, 'true or false');
    });
  }

  string(key: string, fallback?: string): string {
    return this.read(key, fallback, (raw) => raw.value);
  }

  /** ConfigError naming the key, its value, its origin and what was expected. */
  bad(key: string, raw: RawValue, expected: string): never {
    throw new ConfigError(
      `Invalid value for ${key} in [${this.name}] (${raw.origin}): ${JSON.stringify(raw.value)}; expected ${expected}`);
  }

  private read<T>(key: string, fallback: T | undefined, parse: (raw: RawValue, spec: KeySpec) => T): T {
    const spec = this.specs[key];
    if (spec === undefined) throw new Error(`BUG: no spec for config key ${key}`);
    const raw = this.raw(key);
    if (raw !== undefined) return parse(raw, spec);
    if (fallback !== undefined) return fallback;
    if (spec.default !== null) return parse({ value: spec.default, origin: 'default' }, spec);
    const where = this.section === undefined ? `no [${this.name}] section` : `[${this.name}] at ${this.section.origin}`;
    throw new ConfigError(`Missing required key ${key} in [${this.name}] (${where})`);
  }

  private arithmetic(key: string, raw: RawValue, spec: KeySpec): number {
    try {
      return evaluateArithmetic(raw.value);
    } catch (e) {
      const why = e instanceof ConfigError ? ` (${e.message})` : '';
      return this.bad(key, raw, `${spec.kind === 'int' ? 'an integer' : 'a number'}${range(spec)} or arithmetic such as 1024*1024${why}`);
    }
  }

  private check(key: string, raw: RawValue, spec: KeySpec, n: number): void {
    if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
      this.bad(key, raw, `${spec.kind === 'int' ? 'an integer' : 'a number'}${range(spec)}, got ${n}`);
    }
  }
}

function range(spec: KeySpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return ` in ${spec.min}..${spec.max}`;
  if (spec.min !== undefined) return ` >= ${spec.min}`;
  if (spec.max !== undefined) return ` <= ${spec.max}`;
  return '';
}
