/**
 * Where the publisher keeps its resume point. A position is saved only once the broker acknowledged every message of
 * every transaction up to it, so resuming there re-publishes (at least once) and never skips.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomically } from '../../sdk/index.js';

/** A resume point at a transaction boundary: `gtidSet` when the server has GTIDs, else `file` + `position`. */
export interface BinlogPosition {
  /** MariaDB GTID position (`0-1-1234`) or MySQL GTID set (`uuid:1-27`); undefined without GTIDs. */
  readonly gtidSet?: string;
  readonly file?: string;
  readonly position?: number;
}

export interface PositionStore {
  /** The saved position, or undefined on the first start. */
  load(): Promise<BinlogPosition | undefined>;
  /** Saves durably: after it resolves, a crash resumes at this position or a later one. */
  save(position: BinlogPosition): Promise<void>;
  /** Releases what `load` took (a lock); the publisher calls it when it stops. */
  close?(): Promise<void>;
}

const FORMAT = 'metaq-binlog-position/1';

/** A position as the stores keep it: a JSON document naming its format. */
export function encodePosition(position: BinlogPosition): string {
  return JSON.stringify({ format: FORMAT, ...position, savedAt: new Date().toISOString() });
}

/** Reads what {@link encodePosition} wrote; `foreign(format)` is the error for a document of another format. */
export function decodePosition(text: string, foreign: (format: string) => Error): BinlogPosition {
  const o = JSON.parse(text) as { format?: string } & BinlogPosition;
  if (o.format !== FORMAT) throw foreign(String(o.format));
  return {
    ...(typeof o.gtidSet === 'string' ? { gtidSet: o.gtidSet } : {}),
    ...(typeof o.file === 'string' ? { file: o.file } : {}),
    ...(typeof o.position === 'number' ? { position: o.position } : {}),
  };
}

/**
 * A JSON file written atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the old or the
 * new position, never a torn one.
 *
 * @example
 * ```ts
 * const store = new FilePositionStore('/var/lib/metaq/binlog-shop.json');
 * ```
 */
export class FilePositionStore implements PositionStore {
  constructor(readonly path: string) {}

  async load(): Promise<BinlogPosition | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return decodePosition(text, (format) => new Error(`${this.path} is not a binlog position file (format ${format})`));
  }

  async save(position: BinlogPosition): Promise<void> {
    await writeFileAtomically(this.path, encodePosition(position) + '\n');
  }
}
