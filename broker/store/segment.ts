/**
 * One segment file of a partition: `[start, start + size)` in log offsets. The descriptor is opened lazily and
 * closed only when no read is using it, so that retention can remove a segment under a concurrent read.
 */
import type { FileIO } from './file-io.js';
import { readFully } from './file-io.js';

export class Segment {
  /** Bytes written to the file (in the OS). */
  size: number;
  /** False until the flush cycle has created the file (a roll creates the segment logically first). */
  created: boolean;
  /** Set once retention has detached it; the descriptor is closed when the last reader is done. */
  removed = false;
  private fd = -1;
  private opening: Promise<number> | null = null;
  private readers = 0;

  constructor(readonly start: number, readonly path: string, size: number, created: boolean) {
    this.size = size;
    this.created = created;
  }

  /** The descriptor, opening the file read/write if needed. */
  async descriptor(io: FileIO): Promise<number> {
    if (this.fd >= 0) return this.fd;
    if (this.opening === null) {
      this.opening = io.open(this.path, 'r+').then((fd) => { this.fd = fd; return fd; },
        (e: unknown) => { this.opening = null; throw e; });
    }
    return this.opening;
  }

  /** Creates the file (it must not exist) and keeps its descriptor. */
  async create(io: FileIO): Promise<void> {
    this.fd = await io.open(this.path, 'wx+');
    this.opening = Promise.resolve(this.fd);
    this.created = true;
  }

  /** The descriptor if already open, else -1. */
  get openFd(): number {
    return this.fd;
  }

  /** Reads `[position, position + length)` of the file into `buf`; resolves with the bytes read. */
  async read(io: FileIO, buf: Buffer, length: number, position: number): Promise<number> {
    this.readers++;
    try {
      return await readFully(io, await this.descriptor(io), buf, length, position);
    } finally {
      this.readers--;
      if (this.removed && this.readers === 0) void this.close(io).catch(() => undefined);
    }
  }

  /** Closes the descriptor now, or after the last reader when `removed` is set. */
  async close(io: FileIO): Promise<void> {
    if (this.readers > 0) return;
    const fd = this.fd >= 0 ? this.fd : this.opening === null ? -1 : await this.opening.catch(() => -1);
    this.fd = -1;
    this.opening = null;
    if (fd >= 0) await io.close(fd);
  }
}
