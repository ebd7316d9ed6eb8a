/**
 * CrashFs: a FileIO over a real directory that remembers what a power loss could take away (reliability.md T2).
 *
 * Per file it keeps the durable image (content as of the last fdatasync) and the writes/truncates since; per
 * directory the durable entries (as of the last directory fsync) and the creates/renames/unlinks since.
 * `powerLoss(seed)` stops all I/O (later calls fail with EIO), then rewrites the real directory as a power loss
 * might leave it: each directory keeps its durable entries plus a random prefix of its pending entry changes (so a
 * file created since the last directory fsync may vanish, a rename may be undone), and each file keeps its durable
 * image plus a random prefix of its pending bytes (a torn write), optionally followed by garbage.
 *
 * Simplification: `mkdir` is treated as durable at once (the store fsyncs the parent after it anyway).
 */
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import type { FileIO, FileStat, FsSpace, OpenMode } from '../../broker/store/file-io.js';
import { NodeFileIO } from '../../broker/store/file-io.js';
import { errnoError } from '../../broker/store/failpoints.js';
import { rng } from '../../broker/store/testing.js';

type FileOp = { readonly kind: 'write'; readonly pos: number; readonly data: Buffer } | { readonly kind: 'trunc'; readonly len: number };
interface Inode { durable: Buffer; pending: FileOp[] }
type DirOp = { readonly kind: 'link'; readonly name: string; readonly inode: Inode }
  | { readonly kind: 'unlink'; readonly name: string }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string };
interface DirState { durable: Map<string, Inode>; ops: DirOp[] }

export interface PowerLossOptions {
  /** Probability that a file with pending bytes gets garbage after its kept prefix. Default 0.3. */
  readonly garbage?: number;
}

export interface PowerLossReport {
  readonly files: number;
  readonly pendingBytes: number;
  readonly keptPendingBytes: number;
  readonly garbageFiles: number;
  /** Directory entry changes undone. */
  readonly entriesUndone: number;
}

export class CrashFs implements FileIO {
  private readonly inner = new NodeFileIO();
  private crashed = false;
  private inflight = 0;
  private drained: (() => void) | null = null;
  private readonly files = new Map<string, Inode>();
  private readonly dirs = new Map<string, DirState>();
  private readonly fds = new Map<number, Inode>();
  /** fdatasync calls that completed (for reports). */
  fsyncs = 0;

  async open(path: string, mode: OpenMode): Promise<number> {
    const dir = this.dirState(dirOf(path));
    const existing = this.files.get(path);
    const fd = await this.run(() => this.inner.open(path, mode));
    let inode = existing;
    if (inode === undefined) {
      if (mode === 'r' || mode === 'r+') inode = this.adopt(path);
      else {
        inode = { durable: Buffer.alloc(0), pending: [] };
        this.files.set(path, inode);
        dir.ops.push({ kind: 'link', name: nameOf(path), inode });
      }
    } else if (mode === 'w') {
      inode.pending.push({ kind: 'trunc', len: 0 });
    }
    this.fds.set(fd, inode);
    return fd;
  }

  async writev(fd: number, buffers: readonly Uint8Array[], position: number): Promise<number> {
    const inode = this.inode(fd);
    const data = Buffer.concat(buffers);
    const n = await this.run(() => this.inner.writev(fd, buffers, position));
    inode.pending.push({ kind: 'write', pos: position, data });
    return n;
  }

  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.run(() => this.inner.read(fd, buffer, offset, length, position));
  }

  async fdatasync(fd: number): Promise<void> {
    const inode = this.inode(fd);
    const n = inode.pending.length;
    await this.run(() => this.inner.fdatasync(fd));
    inode.durable = applyOps(inode.durable, inode.pending.splice(0, n));
    this.fsyncs++;
  }

  async ftruncate(fd: number, length: number): Promise<void> {
    const inode = this.inode(fd);
    await this.run(() => this.inner.ftruncate(fd, length));
    inode.pending.push({ kind: 'trunc', len: length });
  }

  async close(fd: number): Promise<void> {
    this.fds.delete(fd);
    await this.run(() => this.inner.close(fd));
  }

  async rename(from: string, to: string): Promise<void> {
    const inode = this.files.get(from) ?? this.adopt(from);
    await this.run(() => this.inner.rename(from, to));
    this.files.delete(from);
    this.files.set(to, inode);
    if (dirOf(from) === dirOf(to)) {
      this.dirState(dirOf(from)).ops.push({ kind: 'rename', from: nameOf(from), to: nameOf(to) });
    } else {
      this.dirState(dirOf(from)).ops.push({ kind: 'unlink', name: nameOf(from) });
      this.dirState(dirOf(to)).ops.push({ kind: 'link', name: nameOf(to), inode });
    }
  }

  async unlink(path: string): Promise<void> {
    const dir = this.dirState(dirOf(path));
    await this.run(() => this.inner.unlink(path));
    this.files.delete(path);
    dir.ops.push({ kind: 'unlink', name: nameOf(path) });
  }

  mkdir(path: string): Promise<void> {
    return this.run(() => this.inner.mkdir(path));
  }

  readdir(path: string): Promise<string[]> {
    this.dirState(path);
    return this.run(() => this.inner.readdir(path));
  }

  stat(path: string): Promise<FileStat> {
    return this.run(() => this.inner.stat(path));
  }

  async fsyncDir(path: string): Promise<void> {
    const dir = this.dirState(path);
    const n = dir.ops.length;
    await this.run(() => this.inner.fsyncDir(path));
    dir.durable = applyDirOps(dir.durable, dir.ops.splice(0, n));
  }

  statfs(path: string): Promise<FsSpace> {
    return this.run(() => this.inner.statfs(path));
  }

  /**
   * Cuts the power: every later call fails with EIO, in-flight calls finish (and fail), then the real files are
   * rewritten to a state a power loss may leave. Call it at most once; use a new CrashFs for the restart.
   */
  async powerLoss(seed: number, options: PowerLossOptions = {}): Promise<PowerLossReport> {
    this.crashed = true;
    if (this.inflight > 0) await new Promise<void>((r) => { this.drained = r; });
    for (const fd of this.fds.keys()) await this.inner.close(fd).catch(() => undefined);
    this.fds.clear();
    const rand = rng(seed);
    const garbageP = options.garbage ?? 0.3;
    let files = 0; let pendingBytes = 0; let keptPendingBytes = 0; let garbageFiles = 0; let entriesUndone = 0;
    const images = new Map<Inode, Buffer>();
    const image = (inode: Inode): Buffer => {
      let img = images.get(inode);
      if (img !== undefined) return img;
      const total = inode.pending.reduce((s, op) => s + (op.kind === 'write' ? op.data.length : 1), 0);
      const keep = Math.floor(rand() * (total + 1));
      const { content, kept, end } = applyPrefix(inode.durable, inode.pending, keep);
      img = content;
      pendingBytes += total;
      keptPendingBytes += kept;
      if (inode.pending.length > 0 && rand() < garbageP) {
        const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 512) }, () => Math.floor(rand() * 256)));
        const grown = Buffer.alloc(Math.max(img.length, end + junk.length));
        img.copy(grown);
        junk.copy(grown, end);
        img = grown;
        garbageFiles++;
      }
      images.set(inode, img);
      return img;
    };
    for (const [path, dir] of this.dirs) {
      const k = Math.floor(rand() * (dir.ops.length + 1));
      entriesUndone += dir.ops.length - k;
      const ns = applyDirOps(dir.durable, dir.ops.slice(0, k));
      for (const name of readdirSync(path)) {
        if (statSync(`${path}/${name}`).isFile()) unlinkSync(`${path}/${name}`);
      }
      for (const [name, inode] of ns) { writeFileSync(`${path}/${name}`, image(inode)); files++; }
    }
    return { files, pendingBytes, keptPendingBytes, garbageFiles, entriesUndone };
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.crashed) throw errnoError('EIO', 'power lost');
    this.inflight++;
    try {
      const v = await fn();
      if (this.crashed) throw errnoError('EIO', 'power lost');
      return v;
    } finally {
      if (--this.inflight === 0 && this.drained !== null) { this.drained(); this.drained = null; }
    }
  }

  private inode(fd: number): Inode {
    const i = this.fds.get(fd);
    if (i === undefined) throw errnoError('EBADF', `fd ${fd} not opened through CrashFs`);
    return i;
  }

  /** Starts tracking a directory; what is in it now counts as durable. */
  private dirState(path: string): DirState {
    let d = this.dirs.get(path);
    if (d === undefined) {
      d = { durable: new Map(), ops: [] };
      this.dirs.set(path, d);
      let names: string[] = [];
      try { names = readdirSync(path); } catch { /* created later by mkdir */ }
      for (const name of names) {
        const p = `${path}/${name}`;
        if (statSync(p).isFile()) d.durable.set(name, this.files.get(p) ?? this.adopt(p));
      }
    }
    return d;
  }

  private adopt(path: string): Inode {
    let inode = this.files.get(path);
    if (inode === undefined) {
      let durable = Buffer.alloc(0);
      try { durable = readFileSync(path); } catch { /* missing: the real call reports it */ }
      inode = { durable, pending: [] };
      this.files.set(path, inode);
    }
    return inode;
  }
}

function dirOf(p: string): string { return p.slice(0, p.lastIndexOf('/')) || '/'; }
function nameOf(p: string): string { return p.slice(p.lastIndexOf('/') + 1); }

function applyOps(base: Buffer, ops: readonly FileOp[]): Buffer {
  return applyPrefix(base, ops, Infinity).content;
}

/** Applies ops until `budget` units (bytes of writes, 1 per truncate) are used; the last write may be partial. */
function applyPrefix(base: Buffer, ops: readonly FileOp[], budget: number): { content: Buffer; kept: number; end: number } {
  let content = Buffer.from(base);
  let left = budget;
  let kept = 0;
  let end = content.length;
  for (const op of ops) {
    if (left <= 0) break;
    if (op.kind === 'trunc') {
      content = op.len <= content.length ? content.subarray(0, op.len) : Buffer.concat([content, Buffer.alloc(op.len - content.length)]);
      end = op.len;
      left--;
      continue;
    }
    const n = Math.min(op.data.length, left);
    if (op.pos + n > content.length) {
      const grown = Buffer.alloc(op.pos + n);
      content.copy(grown);
      content = grown;
    }
    op.data.copy(content, op.pos, 0, n);
    end = op.pos + n;
    left -= n;
    kept += n;
  }
  return { content: Buffer.from(content), kept, end };
}

function applyDirOps(base: ReadonlyMap<string, Inode>, ops: readonly DirOp[]): Map<string, Inode> {
  const ns = new Map(base);
  for (const op of ops) {
    if (op.kind === 'link') ns.set(op.name, op.inode);
    else if (op.kind === 'unlink') ns.delete(op.name);
    else {
      const inode = ns.get(op.from);
      ns.delete(op.from);
      if (inode !== undefined) ns.set(op.to, inode);
    }
  }
  return ns;
}
