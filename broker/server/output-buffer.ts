import type { Socket } from 'node:net';

const INITIAL_SIZE = 16 * 1024;
/** Bodies at least this large are passed to the socket as they are instead of being copied. */
const LARGE_CHUNK = 8 * 1024;

/**
 * The replies of one connection, gathered during an event-loop turn and written with one socket write
 * (cork/uncork when large bodies are interleaved). One write per reply costs 70-90% of the put path's
 * throughput (performance.md §6).
 */
export class OutputBuffer {
  private buf = Buffer.allocUnsafe(INITIAL_SIZE);
  private len = 0;
  /** Completed chunks waiting for the flush, in order; `buf[0, len)` follows them. */
  private chunks: Buffer[] = [];
  private queuedBytes = 0;

  /** Ensures room for `n` more bytes and returns the buffer and position to write them at. */
  reserve(n: number): Buffer {
    if (this.len + n > this.buf.length) this.grow(n);
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
    this.reserve(data.length).set(data, this.len);
    this.len += data.length;
  }

  get pendingBytes(): number {
    return this.queuedBytes + this.len;
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

  /** Moves the bytes gathered so far into the chunk list; the buffer is handed over, not reused. */
  private cut(): void {
    if (this.len === 0) return;
    this.chunks.push(this.buf.subarray(0, this.len));
    this.queuedBytes += this.len;
    this.buf = Buffer.allocUnsafe(Math.max(INITIAL_SIZE, this.buf.length - this.len));
    this.len = 0;
  }

  private grow(n: number): void {
    if (this.len === 0) {
      this.buf = Buffer.allocUnsafe(Math.max(INITIAL_SIZE, n));
      return;
    }
    // Hand the filled part over as a chunk rather than copying it into a larger buffer.
    this.cut();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }
}
