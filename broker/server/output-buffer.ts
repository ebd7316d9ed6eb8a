import type { Socket } from 'node:net';

/** Replies are written into slabs of this size; each flush hands the socket a view of the filled part. */
const SLAB_SIZE = 256 * 1024;
/** Bodies at least this large are passed to the socket as they are instead of being copied. */
const LARGE_CHUNK = 8 * 1024;

/**
 * The replies of one connection, gathered during an event-loop turn and written with one socket write
 * (cork/uncork when large bodies are interleaved). One write per reply costs 70-90% of the put path's
 * throughput (performance.md §6). Replies are written into a slab and the socket is handed views of it, moving
 * forward only, so the steady state allocates one slab per 256 KiB of replies rather than a buffer per flush.
 */
export class OutputBuffer {
  private buf = Buffer.allocUnsafe(SLAB_SIZE);
  /** Start of the bytes not yet handed to a chunk. */
  private start = 0;
  private len = 0;
  /** Completed chunks waiting for the flush, in order; `buf[start, len)` follows them. */
  private chunks: Buffer[] = [];
  private queuedBytes = 0;

  /** Ensures room for `n` more bytes and returns the buffer to write them into, at {@link position}. */
  reserve(n: number): Buffer {
    if (this.len + n > this.buf.length) {
      this.cut();
      this.buf = Buffer.allocUnsafe(Math.max(SLAB_SIZE, n));
      this.start = this.len = 0;
    }
    return this.buf;
  }

  get position(): number {
    return this.len;
  }

  /** Marks bytes written into the buffer returned by {@link reserve} up to `pos` as part of the output. */
  commit(pos: number): void {
    this.len = pos;
  }

  /** Appends bytes, copying small ones and queueing large ones without a copy (the caller must not reuse them). */
  append(data: Buffer): void {
    if (data.length >= LARGE_CHUNK) {
      this.cut();
      this.chunks.push(data);
      this.queuedBytes += data.length;
      return;
    }
    this.copyIn(data, data.length);
  }

  /** Appends a copy of `data[0, len)` (the caller keeps and may reuse `data`). */
  copyIn(data: Buffer, len: number): void {
    const b = this.reserve(len);
    data.copy(b, this.len, 0, len);
    this.len += len;
  }

  get pendingBytes(): number {
    return this.queuedBytes + this.len - this.start;
  }

  /** Writes everything gathered to the socket; returns socket.write's verdict (false = the kernel buffer is full). */
  flushTo(socket: Socket): boolean {
    this.cut();
    const chunks = this.chunks;
    if (chunks.length === 0) return true;
    this.chunks = [];
    this.queuedBytes = 0;
    if (chunks.length === 1) return socket.write(chunks[0]!);
    socket.cork();
    let ok = true;
    for (const c of chunks) ok = socket.write(c);
    socket.uncork();
    return ok;
  }

  /** Moves the bytes gathered so far into the chunk list (a view: the slab is never written there again). */
  private cut(): void {
    if (this.len === this.start) return;
    this.chunks.push(this.buf.subarray(this.start, this.len));
    this.queuedBytes += this.len - this.start;
    this.start = this.len;
  }
}
