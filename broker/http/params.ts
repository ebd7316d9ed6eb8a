/**
 * Query and body field checks for the HTTP routes: each failure is an {@link HttpError} whose message names the
 * field and says what was expected, so that a client sees what to fix.
 */

/** A request the routes refuse: answered with `status` (MetaQ routes: as text, /api: as `{ error }`). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export type Query = Readonly<Record<string, unknown>>;

/** A non-empty string field; `fallback` when absent (or 400 when there is none). */
export function stringField(q: Query, name: string, fallback?: string): string {
  const v = q[name];
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback;
    throw new HttpError(400, `missing query field ${name}`);
  }
  if (typeof v !== 'string') throw new HttpError(400, `field ${name} must be given once, as a string`);
  return v;
}

/** A string field that may be empty but must be present. */
export function presentField(q: Query, name: string): string {
  const v = q[name];
  if (v === undefined) throw new HttpError(400, `missing query field ${name}`);
  if (typeof v !== 'string') throw new HttpError(400, `field ${name} must be given once, as a string`);
  return v;
}

/**
 * An integer field in `[min, max]` (decimal digits with an optional minus sign, as MetaQ's Integer.parseInt);
 * `fallback` when absent (or 400 when there is none).
 */
export function intField(q: Query, name: string, min: number, max: number, fallback?: number): number {
  const v = q[name];
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback;
    throw new HttpError(400, `missing query field ${name}`);
  }
  const text = typeof v === 'number' ? String(v) : v;
  if (typeof text !== 'string' || !/^-?\d{1,16}$/.test(text)) {
    throw new HttpError(400, `field ${name} must be an integer, got ${JSON.stringify(v)}`);
  }
  const n = Number(text);
  if (n < min || n > max) throw new HttpError(400, `field ${name} must be in ${min}..${max}, got ${n}`);
  return n;
}
