import { connect, type Socket } from 'node:net';
import { ConnectionError, ProtocolError, TimeoutError } from '../errors.js';
import type { Response } from '../protocol/commands.js';
import { ResponseDecoder } from '../protocol/response-decoder.js';
import type { BrokerAddress } from './broker-url.js';
import { formatBrokerUrl } from './broker-url.js';

export interface BrokerConnectionOptions {
  /** Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Default per-request timeout; default 10 s (MetaQ's fetchTimeoutInMills). */
  readonly requestTimeoutMs?: number;
  /** Largest response body accepted; default 64 MiB. */
  readonly maxResponseBytes?: number;
}

interface Pending {
  readonly resolve: (r: Response) => void;
  readonly reject: (e: Error) => void;
  readonly deadline: number;
}

/** How often pending requests are checked against their deadlines. */
const SWEEP_MS = 50;

/**
 * One TCP connection to one broker: requests are pipelined and their replies matched by opaque, in any order.
 * Writes made in the same tick go out in one socket write (cork until the next tick), so thousands of puts in
 * flight cost a few syscalls. A request that gets no reply in time fails with {@link TimeoutError}; when the
 * connection drops, every pending request fails with {@link ConnectionError} (both retriable). Nothing keeps the
 * process alive once {@link close} has run.
 *
 * @example
 * ```ts
 * const conn = await BrokerConnection.connect({ host: '127.0.0.1', port: 8123 });
 * const reply = await conn.request((opaque) => encodeVersion(opaque));
 * await conn.close();
 * ```
 */
export class BrokerConnection {
  readonly url: string;
  private readonly decoder: ResponseDecoder;
  private readonly pending = new Map<number, Pending>();
  private readonly requestTimeoutMs: number;
  private opaque = 0;
  private corked = false;
  private sweeper: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  private closedByUser = false;
  private readonly closeListeners = new Set<(err: Error | undefined) => void>();
  /** Resolves once the socket is closed, for whatever reason. */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket, address: BrokerAddress, options: BrokerConnectionOptions) {
    this.url = formatBrokerUrl(address);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.decoder = new ResponseDecoder({ maxBodyBytes: options.maxResponseBytes ?? 64 * 1024 * 1024 });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => { this.failure ??= new ConnectionError(`connection to ${this.url} failed: ${err.message}`, { cause: err }); });
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.handleClose();
      resolve();
    }));
  }

  /** Opens a connection; fails with ConnectionError (refused, unreachable) or TimeoutError. */
  static connect(address: BrokerAddress, options: BrokerConnectionOptions = {}): Promise<BrokerConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket = connect({ host: address.host, port: address.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`connecting to ${formatBrokerUrl(address)} took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new BrokerConnection(socket, address, options));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new ConnectionError(`cannot connect to ${formatBrokerUrl(address)}: ${err.message}`, { cause: err }));
      });
    });
  }

  /** True until the socket closed. */
  get isOpen(): boolean {
    return !this.socket.destroyed;
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends the frame `encode(opaque)` and resolves with the reply that carries the same opaque.
   * Rejects with TimeoutError after `timeoutMs`, or ConnectionError if the connection is or becomes closed.
   */
  request(encode: (opaque: number) => Buffer, timeoutMs = this.requestTimeoutMs): Promise<Response> {
    if (!this.isOpen) return Promise.reject(this.closedError());
    const opaque = this.nextOpaque();
    const frame = encode(opaque);
    return new Promise((resolve, reject) => {
      this.pending.set(opaque, { resolve, reject, deadline: Date.now() + timeoutMs });
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS);
      this.write(frame);
    });
  }

  /** Sends a frame that gets no reply (`quit`, transaction END). */
  send(frame: Buffer): void {
    if (this.isOpen) this.write(frame);
  }

  /** Registers `fn(err)` to run once when the connection closes (err undefined after {@link close}). */
  onClose(fn: (err: Error | undefined) => void): () => void {
    this.closeListeners.add(fn);
    return () => { this.closeListeners.delete(fn); };
  }

  /** Closes the connection; pending requests fail with ConnectionError. */
  async close(): Promise<void> {
    this.closedByUser = true;
    this.failure ??= new ConnectionError(`connection to ${this.url} was closed`);
    this.socket.end();
    this.socket.destroySoon();
    const forced = setTimeout(() => this.socket.destroy(), 1000);
    await this.closed;
    clearTimeout(forced);
  }

  /** Drops the connection at once (a dead peer): pending requests fail with `reason`. */
  abort(reason: Error): void {
    this.failure ??= reason;
    this.socket.destroy();
  }

  private nextOpaque(): number {
    // Skip opaques still pending after a wrap-around (2^31 requests later).
    do this.opaque = this.opaque === 0x7fffffff ? 1 : this.opaque + 1;
    while (this.pending.has(this.opaque));
    return this.opaque;
  }

  private write(frame: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    try {
      for (let r = this.decoder.next(); r !== undefined; r = this.decoder.next()) {
        const p = this.pending.get(r.opaque);
        if (p === undefined) continue; // a reply after its timeout
        this.pending.delete(r.opaque);
        p.resolve(r);
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.failure = new ConnectionError(`unreadable reply from ${this.url}: ${e.message}`, { cause: e });
      this.socket.destroy();
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [opaque, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(opaque);
      p.reject(new TimeoutError(`no reply from ${this.url} to request ${opaque} in time`));
    }
    if (this.pending.size === 0) this.stopSweeper();
  }

  private stopSweeper(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private closedError(): Error {
    return this.failure ?? new ConnectionError(`connection to ${this.url} is closed`);
  }

  private handleClose(): void {
    this.stopSweeper();
    const err = this.closedError();
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const fn of this.closeListeners) fn(this.closedByUser ? undefined : err);
    this.closeListeners.clear();
  }
}
