/**
 * The store's file layer. Every file operation of `broker/store` goes through a {@link FileIO}, so that tests can
 * record the order of calls, inject failures, or simulate a power loss (test/reliability/crash-fs.ts) without
 * touching the store's code. Files are addressed by numeric descriptors, as in `node:fs`.
 */
import * as fs from 'node:fs';

/** Sizes of a filesystem, in bytes. */
export interface FsSpace {
  readonly totalBytes: number;
  readonly availableBytes: number;
}

export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
  readonly isDirectory: boolean;
}

/** How a file is opened: `r` read only, `r+` read/write existing, `wx+` create new for read/write (fails if it exists), `w` create or truncate. */
export type OpenMode = 'r' | 'r+' | 'wx+' | 'w';

export interface FileIO {
  open(path: string, mode: OpenMode): Promise<number>;
  /** Writes all `buffers` at `position`; resolves with the bytes written (a short write is an error). */
  writev(fd: number, buffers: readonly Uint8Array[], position: number): Promise<number>;
  /** Reads up to `length` bytes into `buffer[offset..]` from `position`; resolves with the bytes read. */
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  close(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Recursive; no error if it exists. */
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<FileStat>;
  /** Makes the directory's entries (creates, renames, unlinks) durable. */
  fsyncDir(path: string): Promise<void>;
  statfs(path: string): Promise<FsSpace>;
}

function cb<T>(resolve: (v: T) => void, reject: (e: Error) => void) {
  return (err: Error | null, v: T): void => { if (err) reject(err); else resolve(v); };
}

/** The real file layer over `node:fs` callbacks (libuv's thread pool; never blocks the event loop). */
export class NodeFileIO implements FileIO {
  open(path: string, mode: OpenMode): Promise<number> {
    return new Promise((res, rej) => fs.open(path, mode, 0o644, cb(res, rej)));
  }

  async writev(fd: number, buffers: readonly Uint8Array[], position: number): Promise<number> {
    let want = 0;
    for (const b of buffers) want += b.byteLength;
    let done = 0;
    let bufs: Uint8Array[] = buffers as Uint8Array[];
    // writev may write less than asked (signals, huge batches): continue from where it stopped.
    for (;;) {
      const n = await new Promise<number>((res, rej) =>
        fs.writev(fd, bufs, position + done, (err, written) => { if (err) rej(err); else res(written); }));
      done += n;
      if (done >= want) return done;
      if (n === 0) throw Object.assign(new Error(`writev wrote 0 of ${want - done} bytes`), { code: 'EIO' });
      bufs = skipBytes(bufs, n);
    }
  }

  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return new Promise((res, rej) => fs.read(fd, buffer, offset, length, position, cb(res, rej)));
  }

  fdatasync(fd: number): Promise<void> {
    return new Promise((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
  }

  ftruncate(fd: number, length: number): Promise<void> {
    return new Promise((res, rej) => fs.ftruncate(fd, length, (e) => (e ? rej(e) : res())));
  }

  close(fd: number): Promise<void> {
    return new Promise((res, rej) => fs.close(fd, (e) => (e ? rej(e) : res())));
  }

  rename(from: string, to: string): Promise<void> {
    return fs.promises.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return fs.promises.unlink(path);
  }

  async mkdir(path: string): Promise<void> {
    await fs.promises.mkdir(path, { recursive: true });
  }

  readdir(path: string): Promise<string[]> {
    return fs.promises.readdir(path);
  }

  async stat(path: string): Promise<FileStat> {
    const s = await fs.promises.stat(path);
    return { size: s.size, mtimeMs: s.mtimeMs, isDirectory: s.isDirectory() };
  }

  async fsyncDir(path: string): Promise<void> {
    const fd = await this.open(path, 'r');
    try { await this.fdatasync(fd); } finally { await this.close(fd); }
  }

  async statfs(path: string): Promise<FsSpace> {
    const s = await fs.promises.statfs(path);
    return { totalBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize };
  }
}

function skipBytes(bufs: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.byteLength) { skip -= b.byteLength; continue; }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** Reads a whole (small) file; undefined if it does not exist. */
export async function readSmallFile(io: FileIO, path: string): Promise<Buffer | undefined> {
  let fd: number;
  try { fd = await io.open(path, 'r'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const size = (await io.stat(path)).size;
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = await io.read(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally { await io.close(fd); }
}

/** Joins a directory and a file name (store paths are always built from these two parts). */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** True if `e` is a Node errno error with the given code. */
export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code;
}

/** Reads `length` bytes at `position` into `buf` (fewer only at the end of the file); resolves with the count. */
export async function readFully(io: FileIO, fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const n = await io.read(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
