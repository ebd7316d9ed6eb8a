/**
 * Offsets in one local JSON file, MetaQ's LocalOffsetStorage format (see offset-file.ts): the standalone and
 * broadcast default.
 *
 * Guarantees: a commit resolves only after the whole file was rewritten atomically and durably (temp file, fsync,
 * rename over the old file, fsync of the directory), so a crash at any moment leaves the old or the new file, never
 * a torn one. Commits of one process are serialised, and commits arriving while a write runs share the next write.
 * Every store of a process that names the same file shares one in-memory map, so consumers of different groups do
 * not overwrite each other. A file that cannot be parsed is an error, never a silent reset of offsets. Two
 * *processes* must not share a file: the last writer would win.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ShuttingDownError, StorageError } from '../errors.js';
import type { Partition } from '../message.js';
import { writeFileAtomically, type AtomicWriteStep } from '../storage/atomic-file.js';
import { checkCommittedOffset, entryKey, formatOffsetFile, parseOffsetFile, type OffsetMap } from './offset-file.js';
import type { CommittedOffset, OffsetStore } from './offset-store.js';

/** The dangerous boundaries of a rewrite, where tests simulate a crash. */
export const OffsetFileFailpoints = {
  /** The temp file holds the new text, not yet fsynced. */
  BEFORE_FSYNC: 'offsets.before-fsync',
  /** The temp file is durable, the old file still in place. */
  BEFORE_RENAME: 'offsets.before-rename',
  /** Renamed, the directory not yet fsynced. */
  BEFORE_DIR_FSYNC: 'offsets.before-dir-fsync',
} as const;
export type OffsetFileFailpoint = (typeof OffsetFileFailpoints)[keyof typeof OffsetFileFailpoints];

const STEP_FAILPOINTS: Record<AtomicWriteStep, OffsetFileFailpoint> = {
  'before-fsync': OffsetFileFailpoints.BEFORE_FSYNC,
  'before-rename': OffsetFileFailpoints.BEFORE_RENAME,
  'before-dir-fsync': OffsetFileFailpoints.BEFORE_DIR_FSYNC,
};

/**
 * Test hook called at each {@link OffsetFileFailpoints} boundary of every rewrite; unset (a no-op) in production.
 *
 * @example
 * ```ts
 * offsetFileFailpoints.hook = (point) => { if (point === OffsetFileFailpoints.BEFORE_RENAME) process.kill(process.pid, 'SIGKILL'); };
 * ```
 */
export const offsetFileFailpoints: { hook?: (point: OffsetFileFailpoint, path: string) => void } = {};

/** The state of one file, shared by every store of this process that names it. */
class SharedOffsetFile {
  refs = 0;
  /** Completed rewrites of the file, for diagnostics. */
  writes = 0;
  private map: Promise<OffsetMap> | undefined;
  /** The write that commits made now will wait for (not started yet), if any. */
  private pending: Promise<void> | undefined;
  /** The tail of the write chain; never rejects. */
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {
  }

  /**
   * Loads the file once. A corrupt file is remembered so every later call fails the same way (no silent reset, and
   * no commit can overwrite it); an I/O error is retried by the next call.
   */
  load(): Promise<OffsetMap> {
    if (this.map === undefined) {
      const loading = this.read();
      this.map = loading;
      loading.catch((e: unknown) => {
        if (e instanceof StorageError && this.map === loading) this.map = undefined;
      });
    }
    return this.map;
  }

  async commit(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    for (const o of offsets) checkCommittedOffset(o);
    const map = await this.load();
    let entries = map.get(group);
    if (entries === undefined) {
      entries = new Map();
      map.set(group, entries);
    }
    for (const o of offsets) {
      entries.set(entryKey(o.topic, o.partition),
        { topic: o.topic, partition: { brokerId: o.partition.brokerId, partition: o.partition.partition },
          offset: o.offset, msgId: o.msgId });
    }
    return this.scheduleWrite(map);
  }

  /** Resolves when every write scheduled so far has finished (successfully or not). */
  drained(): Promise<void> {
    return this.chain;
  }

  private async read(): Promise<OffsetMap> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new StorageError(`cannot read offsets file ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    return parseOffsetFile(text, this.path);
  }

  /**
   * Joins the next write. The snapshot is taken when that write starts, so it covers every commit that joined it;
   * a commit arriving while a write runs schedules (or joins) the one after it.
   */
  private scheduleWrite(map: OffsetMap): Promise<void> {
    if (this.pending !== undefined) return this.pending;
    const write = this.chain.then(() => {
      this.pending = undefined;
      return this.writeNow(formatOffsetFile(map));
    });
    this.pending = write;
    this.chain = write.catch(() => undefined);
    return write;
  }

  private async writeNow(text: string): Promise<void> {
    try {
      await writeFileAtomically(this.path, text, (step) => offsetFileFailpoints.hook?.(STEP_FAILPOINTS[step], this.path));
      this.writes++;
    } catch (e) {
      throw new StorageError(`cannot write offsets file ${this.path}: ${(e as Error).message}`,
        { cause: e, retriable: true });
    }
  }
}

const shared = new Map<string, SharedOffsetFile>();

/**
 * An {@link OffsetStore} in a local JSON file, compatible with MetaQ's `LocalOffsetStorage` (`~/.meta_offsets`):
 * MetaQ's files load, and MetaQ can read ours. Message ids are written as decimal strings (`msgId`) so that
 * 64-bit ids survive JSON.
 *
 * Each store is a handle on a per-process shared state of its file (by resolved path), so several consumers can use
 * the same file; closing a handle releases only that handle.
 *
 * @example
 * ```ts
 * const store = LocalFileOffsetStore.forFile('/var/lib/app/offsets.json');
 * await store.commit('billing', [{ topic: 'orders', partition: { brokerId: 0, partition: 1 }, offset: 1024, msgId: 77n }]);
 * await store.load('billing', 'orders', { brokerId: 0, partition: 1 }); // { ..., offset: 1024, msgId: 77n }
 * await store.close();
 * ```
 */
export class LocalFileOffsetStore implements OffsetStore {
  /** The resolved path of the file. */
  readonly filePath: string;
  private file: SharedOffsetFile | undefined;
  private lastWrites = 0;

  /**
   * Opens a handle on the file (created with its parent directory at the first commit). Same as
   * {@link LocalFileOffsetStore.forFile}.
   */
  constructor(filePath: string) {
    this.filePath = resolve(filePath);
    let file = shared.get(this.filePath);
    if (file === undefined) {
      file = new SharedOffsetFile(this.filePath);
      shared.set(this.filePath, file);
    }
    file.refs++;
    this.file = file;
  }

  /**
   * A handle on the file shared with every other open handle of this process on the same path.
   *
   * @example
   * ```ts
   * const a = LocalFileOffsetStore.forFile('offsets.json'); // consumer of group A
   * const b = LocalFileOffsetStore.forFile('./offsets.json'); // consumer of group B: same file, no lost updates
   * ```
   */
  static forFile(filePath: string): LocalFileOffsetStore {
    return new LocalFileOffsetStore(filePath);
  }

  /**
   * The group's committed offset of a partition, or undefined.
   *
   * @throws ConfigError when the file exists but cannot be parsed.
   */
  async load(group: string, topic: string, partition: Partition): Promise<CommittedOffset | undefined> {
    const map = await this.open().load();
    return map.get(group)?.get(entryKey(topic, partition));
  }

  /**
   * Stores the offsets (other partitions of the group keep theirs) and resolves once the file is durably rewritten.
   *
   * @throws StorageError (retriable) when the file cannot be written; ConfigError when it could not be parsed;
   *   InvalidArgumentError for an offset that could not be read back (nothing of the commit is applied then).
   */
  async commit(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    const file = this.open();
    if (offsets.length === 0) return;
    await file.commit(group, offsets);
  }

  /**
   * How many times the file was rewritten by this process since it was opened (shared by every handle on it).
   * Fewer rewrites than commits means concurrent commits were coalesced.
   *
   * @example
   * ```ts
   * await Promise.all([store.commit('a', offsetsA), store.commit('b', offsetsB)]);
   * store.fileWrites; // 1 or 2
   * ```
   */
  get fileWrites(): number {
    return this.file?.writes ?? this.lastWrites;
  }

  /** Releases this handle after its writes finished. Idempotent. */
  async close(): Promise<void> {
    const file = this.file;
    if (file === undefined) return;
    this.file = undefined;
    file.refs--;
    await file.drained();
    this.lastWrites = file.writes;
    // A handle opened meanwhile keeps the state (and its map, which is newer than the file until written).
    if (file.refs === 0 && shared.get(this.filePath) === file) shared.delete(this.filePath);
  }

  private open(): SharedOffsetFile {
    if (this.file === undefined) throw new ShuttingDownError(`the offset store of ${this.filePath}`);
    return this.file;
  }
}
