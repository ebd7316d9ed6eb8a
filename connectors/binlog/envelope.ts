/**
 * The change envelope: one JSON message per row change (or DDL statement), version {@link ENVELOPE_VERSION}.
 * README.md in this folder is its schema; this file is the one place that builds it.
 *
 * Values are exact: DECIMAL and BIGINT past 2^53 are strings (as zongji decodes them), DATETIME/TIMESTAMP/DATE are the
 * server's text (`dateStrings`), JSON is a JSON value (MySQL) or its text (MariaDB stores JSON as LONGTEXT), binary
 * values are base64 strings named in `base64Columns`, NULL is `null`, text is UTF-8 (utf8mb4 included).
 */

/** Bumped only when a field changes meaning or goes away; new optional fields keep the version. */
export const ENVELOPE_VERSION = 1 as const;

export const ChangeTypes = { insert: 'insert', update: 'update', delete: 'delete', ddl: 'ddl' } as const;
export type ChangeType = (typeof ChangeTypes)[keyof typeof ChangeTypes];

/** A JSON value as it travels in the envelope. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type RowImage = Record<string, JsonValue>;

export interface ChangeEnvelope {
  readonly version: typeof ENVELOPE_VERSION;
  readonly type: ChangeType;
  readonly schema: string;
  /** The table; `null` for a DDL statement. */
  readonly table: string | null;
  /** The row before the change (update, delete); `null` otherwise. */
  readonly before: RowImage | null;
  /** The row after the change (insert, update); `null` otherwise. */
  readonly after: RowImage | null;
  /** Primary key columns in key order; `[]` for a table without one and for DDL. */
  readonly primaryKeyColumns: readonly string[];
  /** The key's values (of `after`, else `before`); `null` when the table has no primary key and for DDL. */
  readonly primaryKey: RowImage | null;
  /** Columns of before/after whose values are base64 of binary data (BLOB, BINARY, VARBINARY, BIT...). */
  readonly base64Columns?: readonly string[];
  /** The transaction's GTID (`domain-server-seq` on MariaDB, `uuid:n` on MySQL); `null` without GTIDs. */
  readonly gtid: string | null;
  /** Where the transaction starts in the binlog: resuming there replays it. */
  readonly binlog: { readonly file: string; readonly position: number };
  /** The binlog event's timestamp (ms since the epoch; the server writes whole seconds). */
  readonly timestamp: number;
  /** The transaction: its GTID, else `file:position` of its start. */
  readonly transactionId: string;
  /** The change's index in its transaction (0-based, binlog order). */
  readonly rowIndex: number;
  /** `transactionId#rowIndex`: equal for a message published again after a restart, unique otherwise. */
  readonly dedupeKey: string;
  /** The statement, for type `ddl`. */
  readonly ddl?: string;
}

/**
 * Converts a decoded row into JSON-safe values, noting which columns had to be base64-encoded. `binary` collects the
 * names (a Set shared by the before and after images of one change).
 */
export function toRowImage(row: Readonly<Record<string, unknown>>, binary: Set<string>): RowImage {
  const out: RowImage = {};
  for (const name of Object.keys(row)) out[name] = toJsonValue(row[name], name, binary);
  return out;
}

function toJsonValue(v: unknown, column: string, binary: Set<string>): JsonValue {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      // FLOAT/DOUBLE cannot hold NaN or infinities in MySQL; keep the text if one ever shows up rather than a null.
      return Number.isFinite(v) ? v : String(v);
    case 'bigint':
      return v.toString();
    default:
      break;
  }
  if (Buffer.isBuffer(v)) {
    binary.add(column);
    return v.toString('base64');
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (Array.isArray(v)) return v.map((x) => toJsonValue(x, column, binary));
  if (typeof v === 'object') {
    const o: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJsonValue(x, column, binary);
    return o;
  }
  return String(v);
}

/** The primary key's values from a row image, or null when there is no key. */
export function primaryKeyOf(image: RowImage | null, columns: readonly string[]): RowImage | null {
  if (image === null || columns.length === 0) return null;
  const key: RowImage = {};
  for (const c of columns) key[c] = image[c] ?? null;
  return key;
}

/** Parses and checks a message payload; throws on a foreign or newer envelope rather than misapplying it. */
export function parseEnvelope(payload: Buffer | string): ChangeEnvelope {
  const e = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) as Partial<ChangeEnvelope>;
  if (e.version !== ENVELOPE_VERSION) {
    throw new Error(`unsupported change envelope version ${String(e.version)} (this build reads ${ENVELOPE_VERSION})`);
  }
  if (typeof e.schema !== 'string' || typeof e.dedupeKey !== 'string' || !(e.type !== undefined && e.type in ChangeTypes)) {
    throw new Error('malformed change envelope: schema, type and dedupeKey are required');
  }
  return e as ChangeEnvelope;
}
