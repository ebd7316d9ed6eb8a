import { connect, type Socket } from 'node:net';
import { ConnectionError, ProtocolError, TimeoutError } from '../errors.js';
import type { Response } from '../protocol/commands.js';
import { ResponseDecoder } from '../protocol/response-decoder.js';
import type { BrokerAddress } from '../protocol/broker-url.js';
import { formatBrokerUrl } from '../protocol/broker-url.js';

export interface BrokerConnectionOptions {
  /** Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Default per-request timeout; default 10 s (MetaQ's fetchTimeoutInMills). */
  readonly requestTimeoutMs?: number;
  /** Largest response body accepted; default 64 MiB. */
  readonly maxResponseBytes?: number;
}

/**
 * Called once with the reply to a request (`error` undefined), or with the error that ended it (`reply`
 * undefined). `token` is what the caller passed with the request: hot paths pass their own state instead of
 * allocating a closure per request.
 */
export type ReplyHandler = (reply: Response | undefined, error: Error | undefined, token: unknown) => void;

/** How often pending requests are checked against their deadlines. */
const SWEEP_MS = 100;
/** Initial number of pending-request slots; it doubles when a slot is still taken by an old request. */
const INITIAL_SLOTS = 1024;

const settlePromise: ReplyHandler = (reply, error, token) => {
  const p = token as { resolve: (r: Response) => void; reject: (e: Error) => void };
  if (error === undefined) p.resolve(reply!);
  else p.reject(error);
};

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
  private readonly requestTimeoutMs: number;
  // Pending requests live in slots indexed by `opaque & mask` (opaques are handed out in sequence), so a request
  // costs no Map entry and no per-request object.
  private slotOpaque = new Int32Array(INITIAL_SLOTS);
  private slotDeadline = new Float64Array(INITIAL_SLOTS);
  private slotHandler: (ReplyHandler | undefined)[] = new Array<ReplyHandler | undefined>(INITIAL_SLOTS).fill(undefined);
  private slotToken: unknown[] = new Array<unknown>(INITIAL_SLOTS).fill(undefined);
  private mask = INITIAL_SLOTS - 1;
  private pendingCount = 0;
  private opaque = 0;
  // Frames written in one tick are gathered and written as one buffer on the next tick.
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private flushScheduled = false;
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
    return this.pendingCount;
  }

  /**
   * Sends the frame `encode(opaque)` and resolves with the reply that carries the same opaque.
   * Rejects with TimeoutError after `timeoutMs`, or ConnectionError if the connection is or becomes closed.
   */
  request(encode: (opaque: number) => Buffer, timeoutMs = this.requestTimeoutMs): Promise<Response> {
    return new Promise((resolve, reject) => this.requestWith(encode, settlePromise, { resolve, reject }, timeoutMs));
  }

  /**
   * The callback form of {@link request}, for hot paths: `handler(reply, error, token)` runs exactly once, never
   * synchronously inside this call.
   */
  requestWith(encode: (opaque: number) => Buffer, handler: ReplyHandler, token: unknown,
    timeoutMs = this.requestTimeoutMs): void {
    if (!this.isOpen) {
      const err = this.closedError();
      process.nextTick(handler, undefined, err, token);
      return;
    }
    const opaque = this.nextOpaque();
    const frame = encode(opaque);
    const i = opaque & this.mask;
    this.slotOpaque[i] = opaque;
    this.slotDeadline[i] = Date.now() + timeoutMs;
    this.slotHandler[i] = handler;
    this.slotToken[i] = token;
    this.pendingCount++;
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS);
    this.write(frame);
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
    this.flush();
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

  /** The next opaque whose slot is free, growing the slots when the one in turn is still taken. */
  private nextOpaque(): number {
    for (;;) {
      this.opaque = this.opaque === 0x7fffffff ? 1 : this.opaque + 1;
      if (this.slotOpaque[this.opaque & this.mask] === 0) return this.opaque;
      if (this.pendingCount * 2 >= this.slotOpaque.length) this.grow();
    }
  }

  private grow(): void {
    const n = this.slotOpaque.length * 2;
    const opaque = new Int32Array(n);
    const deadline = new Float64Array(n);
    const handler = new Array<ReplyHandler | undefined>(n).fill(undefined);
    const token = new Array<unknown>(n).fill(undefined);
    const mask = n - 1;
    for (let i = 0; i < this.slotOpaque.length; i++) {
      const o = this.slotOpaque[i]!;
      if (o === 0) continue;
      const j = o & mask;
      opaque[j] = o;
      deadline[j] = this.slotDeadline[i]!;
      handler[j] = this.slotHandler[i];
      token[j] = this.slotToken[i];
    }
    this.slotOpaque = opaque;
    this.slotDeadline = deadline;
    this.slotHandler = handler;
    this.slotToken = token;
    this.mask = mask;
  }

  /** Frees slot `i` and runs its handler. */
  private settle(i: number, reply: Response | undefined, error: Error | undefined): void {
    const handler = this.slotHandler[i]!;
    const token = this.slotToken[i];
    this.slotOpaque[i] = 0;
    this.slotHandler[i] = undefined;
    this.slotToken[i] = undefined;
    this.pendingCount--;
    handler(reply, error, token);
  }

  private write(frame: Buffer): void {
    this.chunks.push(frame);
    this.chunkBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const chunks = this.chunks;
    if (chunks.length === 0 || this.socket.destroyed) return;
    this.socket.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.chunkBytes));
    this.chunks = [];
    this.chunkBytes = 0;
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    try {
      for (let r = this.decoder.next(); r !== undefined; r = this.decoder.next()) {
        const i = r.opaque & this.mask;
        if (this.slotOpaque[i] !== r.opaque || r.opaque === 0) continue; // a reply after its timeout
        this.settle(i, r, undefined);
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.failure = new ConnectionError(`unreadable reply from ${this.url}: ${e.message}`, { cause: e });
      this.socket.destroy();
    }
  }

  /**
   * The slots of pending requests, oldest first. Callers settle requests in this order, which is the order they
   * were made: retry logic above (an async producer spooling failed sends) keeps its order only so.
   */
  private pendingInSendOrder(): number[] {
    const out: number[] = [];
    // Opaques are handed out in sequence, so the ring read from the slot after the newest one runs oldest first.
    const start = this.opaque + 1;
    for (let k = 0; k < this.slotOpaque.length && out.length < this.pendingCount; k++) {
      const i = (start + k) & this.mask;
      if (this.slotOpaque[i] !== 0) out.push(i);
    }
    return out;
  }

  private sweep(): void {
    const now = Date.now();
    for (const i of this.pendingInSendOrder()) {
      if (this.slotDeadline[i]! > now) continue;
      this.settle(i, undefined, new TimeoutError(`no reply from ${this.url} to request ${this.slotOpaque[i]} in time`));
    }
    if (this.pendingCount === 0) this.stopSweeper();
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
    this.chunks = [];
    this.chunkBytes = 0;
    const err = this.closedError();
    for (const i of this.pendingInSendOrder()) this.settle(i, undefined, err);
    for (const fn of this.closeListeners) fn(this.closedByUser ? undefined : err);
    this.closeListeners.clear();
  }
}
