/**
 * Quartz cron expressions, as MetaQ's `deleteWhen` uses them: `seconds minutes hours day-of-month month
 * day-of-week [year]`, in local time. Each field takes `*`, `?` (day fields only), a value, a range `a-b`, a step
 * `a/n`, `*\/n` or `a-b/n`, and comma lists; months `JAN`-`DEC` and days `SUN`-`SAT` by name (Quartz numbers days
 * 1 = Sunday .. 7 = Saturday). Not supported (refused with a ConfigError): `L`, `W`, `#`.
 *
 * @example
 * ```ts
 * parseCron('0 0 6,18 * * ?').next(Date.now())   // the next 06:00:00 or 18:00:00
 * ```
 */
import { ConfigError } from '../../sdk/errors.js';

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec { readonly name: string; readonly min: number; readonly max: number; readonly names?: string[]; readonly nameBase?: number }
const FIELDS: readonly FieldSpec[] = [
  { name: 'seconds', min: 0, max: 59 },
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: 'day-of-week', min: 1, max: 7, names: DAYS, nameBase: 1 },
  { name: 'year', min: 1970, max: 2199 },
];

/** A parsed cron expression. */
export interface CronExpression {
  readonly source: string;
  /** The first fire time strictly after `afterMs` (epoch ms, whole seconds), or null if there is none. */
  next(afterMs: number): number | null;
}

/** Parses a Quartz cron expression; throws ConfigError naming the bad field. */
export function parseCron(source: string): CronExpression {
  const parts = source.trim().split(/\s+/);
  if (parts.length < 6 || parts.length > 7) {
    throw new ConfigError(`cron "${source}" must have 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), got ${parts.length}`);
  }
  if (parts.length === 6) parts.push('*');
  const sets = parts.map((p, i) => parseField(p, FIELDS[i]!, source));
  const domAny = parts[3] === '?' || parts[3] === '*';
  const dowAny = parts[5] === '?' || parts[5] === '*';
  if (!domAny && !dowAny) {
    throw new ConfigError(`cron "${source}": specifying both day-of-month and day-of-week is not supported; use ? in one of them`);
  }
  const [sec, min, hour, dom, mon, dow, year] = sets as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  const maxYear = Math.max(...year);
  return {
    source,
    next(afterMs: number): number | null {
      const d = new Date(Math.floor(afterMs / 1000) * 1000 + 1000);
      // Each step moves to the start of the next candidate unit, so the loop is short for any real expression.
      for (let i = 0; i < 500_000; i++) {
        const y = d.getFullYear();
        if (y > maxYear) return null;
        if (!year.has(y)) { d.setFullYear(y + 1, 0, 1); d.setHours(0, 0, 0, 0); continue; }
        if (!mon.has(d.getMonth() + 1)) { d.setMonth(d.getMonth() + 1, 1); d.setHours(0, 0, 0, 0); continue; }
        const dayOk = (domAny || dom.has(d.getDate())) && (dowAny || dow.has(d.getDay() + 1));
        if (!dayOk) { d.setDate(d.getDate() + 1); d.setHours(0, 0, 0, 0); continue; }
        if (!hour.has(d.getHours())) { d.setHours(d.getHours() + 1, 0, 0, 0); continue; }
        if (!min.has(d.getMinutes())) { d.setMinutes(d.getMinutes() + 1, 0, 0); continue; }
        if (!sec.has(d.getSeconds())) { d.setSeconds(d.getSeconds() + 1, 0); continue; }
        return d.getTime();
      }
      return null;
    },
  };
}

function parseField(text: string, spec: FieldSpec, source: string): Set<number> {
  const bad = (why: string): never => {
    throw new ConfigError(`cron "${source}": bad ${spec.name} field "${text}": ${why}`);
  };
  const out = new Set<number>();
  if (text === '?') {
    if (spec.name !== 'day-of-month' && spec.name !== 'day-of-week') bad('? is allowed only in the day fields');
    for (let v = spec.min; v <= spec.max; v++) out.add(v);
    return out;
  }
  for (const item of text.split(',')) {
    if (/[LW#]/i.test(item) && !(spec.names?.some((n) => item.toUpperCase().includes(n)) ?? false)) {
      bad('L, W and # are not supported');
    }
    const [range, stepText, extra] = item.split('/');
    if (extra !== undefined || range === undefined || range === '') bad('expected value, range or step');
    let lo = spec.min;
    let hi = spec.max;
    if (range !== '*') {
      const [a, b, more] = range!.split('-');
      if (more !== undefined) bad('a range has two ends');
      lo = value(a!, spec, bad);
      hi = b === undefined ? (stepText === undefined ? lo : spec.max) : value(b, spec, bad);
    }
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) bad(`step "${stepText}" must be a positive integer`);
    if (lo > hi) bad(`range ${lo}-${hi} is reversed`);
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

function value(text: string, spec: FieldSpec, bad: (why: string) => never): number {
  const idx = spec.names?.indexOf(text.toUpperCase()) ?? -1;
  const v = idx >= 0 ? idx + (spec.nameBase ?? 0) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(v)) bad(`"${text}" is not a number${spec.names ? ' or name' : ''}`);
  if (v < spec.min || v > spec.max) bad(`${v} is outside ${spec.min}-${spec.max}`);
  return v;
}
