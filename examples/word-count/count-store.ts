/**
 * The word counts, kept in a state directory so that applying a message twice counts it once.
 *
 * Crash semantics first: `apply()` resolves only after its records are written and fdatasync'ed, so a message whose
 * tuple was acked (the sink acks after `apply`) is on disk. A message replayed after a crash is found in the applied
 * set and skipped. A crash in the middle of a write leaves a torn last line, which `open()` cuts (and reports); a bad
 * line followed by good ones is corruption, not a crash, and `open()` refuses it rather than drop acked counts.
 *
 * Layout: `<dir>/counts.log`, one line per applied message, `<crc32 as 8 hex> <json>\n` with json
 * `{"msg":"<partition>@<offset>","words":{"fox":2,...}}`. The counts are the sum over the lines; nothing else is
 * stored, so there is no second file to keep consistent with the first. `<dir>/LOCK` holds the owner's pid.
 */
import { crc32 } from 'node:zlib';
import { mkdir, open, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, syncDirectory } from '../../sdk/index.js';

/** What one message adds to the counts. */
export interface CountRecord {
  /** `<partition>@<offset>`: the message's identity across replays. */
  readonly msg: string;
  readonly words: ReadonlyMap<string, number>;
}

/** What {@link WordCountStore.open} found. */
export interface LoadReport {
  /** Messages applied (lines kept). */
  readonly messages: number;
  /** Bytes cut from the end: a torn or unsynced last write. */
  readonly cutBytes: number;
}

export const LOG_FILE = 'counts.log';
const LOCK_FILE = 'LOCK';

/**
 * The idempotent store behind the word-count sink. One process at a time per directory (a LOCK file with the pid
 * keeps a second one out); `apply` calls must not overlap (the sink's Writable runs them one by one).
 *
 * @example
 * ```ts
 * const store = await WordCountStore.open('/var/lib/word-count');
 * const r = await store.apply([{ msg: '0-1@0', words: new Map([['fox', 1]]) }]);   // durable now
 * console.log(r.applied, r.duplicates, store.counts.get('fox'));
 * await store.close();
 * ```
 */
export class WordCountStore {
  private readonly applied = new Set<string>();
  private readonly totals = new Map<string, number>();
  private broken: unknown;

  private constructor(readonly dir: string, private readonly fh: FileHandle, readonly loaded: LoadReport) {}

  /** Loads `dir` (created if missing), cuts a torn tail, and opens the log for appending. */
  static async open(dir: string): Promise<WordCountStore> {
    await mkdir(dir, { recursive: true });
    await lock(dir);
    const path = join(dir, LOG_FILE);
    const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    const records: CountRecord[] = [];
    const end = bytes === undefined ? 0 : scan(bytes, path, records);
    const cutBytes = bytes === undefined ? 0 : bytes.length - end;
    const fh = await open(path, 'a');
    try {
      if (cutBytes > 0) {
        await fh.truncate(end);
        await fh.sync();
      }
      if (bytes === undefined) await syncDirectory(dir);
    } catch (e) {
      await fh.close();
      throw e;
    }
    const store = new WordCountStore(dir, fh, { messages: records.length, cutBytes });
    for (const r of records) store.remember(r);
    return store;
  }

  /** Word -> count over every message applied. */
  get counts(): ReadonlyMap<string, number> {
    return this.totals;
  }

  /** Messages applied. */
  get size(): number {
    return this.applied.size;
  }

  /** True when the message `<partition>@<offset>` was applied. */
  has(msg: string): boolean {
    return this.applied.has(msg);
  }

  /**
   * Applies the records not applied before, in one write and one fdatasync; resolves once they are durable. A failed
   * write breaks the store for good: what reached the file is unknown until the next `open()` reads it back.
   */
  async apply(batch: readonly CountRecord[]): Promise<{ applied: number; duplicates: number }> {
    if (this.broken !== undefined) throw new StorageError('the word-count log failed earlier', { cause: this.broken });
    const fresh: CountRecord[] = [];
    const inBatch = new Set<string>();
    for (const r of batch) {
      if (this.applied.has(r.msg) || inBatch.has(r.msg)) continue;
      inBatch.add(r.msg);
      fresh.push(r);
    }
    if (fresh.length > 0) {
      let text = '';
      for (const r of fresh) text += encodeLine(r);
      try {
        await this.fh.appendFile(text);
        await this.fh.datasync();
      } catch (e) {
        this.broken = e;
        throw new StorageError(`writing ${join(this.dir, LOG_FILE)} failed`, { cause: e });
      }
      for (const r of fresh) this.remember(r);
    }
    return { applied: fresh.length, duplicates: batch.length - fresh.length };
  }

  async close(): Promise<void> {
    await this.fh.close();
    await writeFile(join(this.dir, LOCK_FILE), '');
  }

  private remember(r: CountRecord): void {
    this.applied.add(r.msg);
    for (const [w, n] of r.words) this.totals.set(w, (this.totals.get(w) ?? 0) + n);
  }
}

/** `<crc32 hex> <json>\n`; the checksum covers the JSON text. */
export function encodeLine(r: CountRecord): string {
  const json = JSON.stringify({ msg: r.msg, words: Object.fromEntries(r.words) });
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** The record of one line (without its newline), or undefined when the line is not a whole, intact record. */
function decodeLine(line: string): CountRecord | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  if (Number.parseInt(line.slice(0, 8), 16) !== crc32(json)) return undefined;
  try {
    const o = JSON.parse(json) as { msg?: unknown; words?: unknown };
    if (typeof o.msg !== 'string' || typeof o.words !== 'object' || o.words === null) return undefined;
    const words = new Map<string, number>();
    for (const [w, n] of Object.entries(o.words)) {
      if (!Number.isSafeInteger(n)) return undefined;
      words.set(w, n as number);
    }
    return { msg: o.msg, words };
  } catch {
    return undefined;
  }
}

/**
 * Reads the records of `bytes` into `out` up to the first line that is not a whole record; returns where that line
 * starts. Throws when an intact record follows it: that is damage in the middle, not a torn tail.
 */
function scan(bytes: Buffer, path: string, out: CountRecord[]): number {
  let pos = 0;
  for (;;) {
    const nl = bytes.indexOf(10, pos);
    if (nl < 0) return pos;
    const r = decodeLine(bytes.toString('utf8', pos, nl));
    if (r === undefined) break;
    out.push(r);
    pos = nl + 1;
  }
  for (let at = bytes.indexOf(10, pos) + 1; at > 0 && at < bytes.length; at = bytes.indexOf(10, at) + 1) {
    const nl = bytes.indexOf(10, at);
    if (nl >= 0 && decodeLine(bytes.toString('utf8', at, nl)) !== undefined) {
      throw new StorageError(`${path}: a damaged record at byte ${pos} is followed by intact ones (byte ${at}); ` +
        'refusing to drop counts that were acknowledged');
    }
  }
  return pos;
}

/** Takes the directory's LOCK for this pid, unless a live process holds it. */
async function lock(dir: string): Promise<void> {
  const path = join(dir, LOCK_FILE);
  const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
    throw new StorageError(`${dir} is in use by process ${holder} (${path})`);
  }
  await writeFile(path, String(process.pid));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
