import type { Logger } from 'pino';
import type { Link } from '../cluster/broker-router.js';
import { ConnectionError, ShuttingDownError, TimeoutError } from '../errors.js';
import type { Response } from '../protocol/commands.js';
import { encodeVersion } from '../protocol/encode.js';
import { BrokerConnection, type BrokerConnectionOptions, type ReplyHandler } from './broker-connection.js';
import { formatBrokerUrl, type BrokerAddress } from '../protocol/broker-url.js';

export interface BrokerLinkOptions extends BrokerConnectionOptions {
  /** A `version` request is sent this often; default 5000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** An unanswered heartbeat drops the connection after this long; default 3000 ms. */
  readonly heartbeatTimeoutMs?: number;
  readonly reconnect?: {
    readonly initialDelayMs?: number;
    readonly maxDelayMs?: number;
    readonly maxAttempts?: number;
  };
  readonly logger?: Logger;
}

/** What a link is doing; see {@link BrokerLink.onStateChange}. */
export type LinkState = 'connecting' | 'connected' | 'disconnected' | 'closed';

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * A link to one broker that stays up: it connects, checks the connection with a `version` heartbeat, and when the
 * connection drops it reconnects with exponential backoff (with jitter). Requests made while it is down wait for the
 * reconnect up to their timeout, then fail with a retriable error; requests that were in flight when it dropped fail
 * with ConnectionError (retriable: whether the broker processed them is unknown).
 *
 * @example
 * ```ts
 * const link = new BrokerLink({ host: '127.0.0.1', port: 8123 });
 * await link.whenConnected();
 * const reply = await link.request((opaque) => encodeVersion(opaque));
 * await link.close();
 * ```
 */
export class BrokerLink implements Link {
  readonly url: string;
  private conn: BrokerConnection | undefined;
  private state: LinkState = 'connecting';
  private attempts = 0;
  private everConnected = false;
  private closedByUser = false;
  private lastError: Error | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly listeners = new Set<(state: LinkState, error: Error | undefined) => void>();
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxAttempts: number;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;

  constructor(private readonly address: BrokerAddress, private readonly options: BrokerLinkOptions = {}) {
    this.url = formatBrokerUrl(address);
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5000;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 3000;
    this.initialDelayMs = options.reconnect?.initialDelayMs ?? 100;
    this.maxDelayMs = options.reconnect?.maxDelayMs ?? 5000;
    this.maxAttempts = options.reconnect?.maxAttempts ?? Infinity;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.connect();
  }

  /** True while a connection is up. */
  get isConnected(): boolean {
    return this.state === 'connected';
  }

  /** Requests waiting for their reply on the current connection. */
  get inFlight(): number {
    return this.conn?.inFlight ?? 0;
  }

  /**
   * Resolves once connected. Before the first connection, a failed attempt rejects at once (a wrong address
   * should not look like a slow one); later it waits for the reconnect up to `timeoutMs`.
   */
  whenConnected(timeoutMs = this.connectTimeoutMs): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') {
      return Promise.reject(this.closedByUser ? new ShuttingDownError(`the link to ${this.url}`) : this.downError());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new ConnectionError(`not connected to ${this.url} after ${timeoutMs} ms` +
            (this.lastError === undefined ? '' : `: ${this.lastError.message}`), { cause: this.lastError }));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  request(encode: (opaque: number) => Buffer, timeoutMs = this.requestTimeoutMs): Promise<Response> {
    const conn = this.conn;
    if (this.state === 'connected' && conn !== undefined) return conn.request(encode, timeoutMs);
    const start = Date.now();
    return this.whenConnected(timeoutMs).then(() => this.request(encode, Math.max(1, timeoutMs - (Date.now() - start))));
  }

  requestWith(encode: (opaque: number) => Buffer, handler: ReplyHandler, token: unknown,
    timeoutMs = this.requestTimeoutMs): void {
    const conn = this.conn;
    if (this.state === 'connected' && conn !== undefined) {
      conn.requestWith(encode, handler, token, timeoutMs);
      return;
    }
    this.request(encode, timeoutMs).then((r) => handler(r, undefined, token), (e: Error) => handler(undefined, e, token));
  }

  /** Sends a frame that gets no reply; throws ConnectionError while disconnected. */
  send(frame: Buffer): void {
    if (this.state !== 'connected' || this.conn === undefined) throw this.downError();
    this.conn.send(frame);
  }

  /** Calls `fn(state, error)` on every state change; returns the unsubscribe function. */
  onStateChange(fn: (state: LinkState, error: Error | undefined) => void): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }

  /** Closes the connection and stops reconnecting; waiting requests fail with ShuttingDownError. */
  async close(): Promise<void> {
    this.closedByUser = true;
    if (this.state === 'closed' && this.conn === undefined) return;
    this.setState('closed', undefined);
    clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    this.failWaiters(new ShuttingDownError(`the link to ${this.url}`));
    const conn = this.conn;
    this.conn = undefined;
    await conn?.close();
  }

  private connect(): void {
    this.setState('connecting', undefined);
    BrokerConnection.connect(this.address, this.options).then((conn) => {
      if (this.state === 'closed') {
        void conn.close();
        return;
      }
      this.conn = conn;
      this.attempts = 0;
      this.everConnected = true;
      this.lastError = undefined;
      conn.onClose((err) => this.onDrop(conn, err));
      this.setState('connected', undefined);
      for (const w of this.waiters) {
        clearTimeout(w.timer);
        w.resolve();
      }
      this.waiters.clear();
      this.startHeartbeat(conn);
    }, (err: Error) => {
      this.lastError = err;
      if (this.state === 'closed') return;
      if (!this.everConnected) this.failWaiters(err);
      this.scheduleReconnect(err);
    });
  }

  private onDrop(conn: BrokerConnection, err: Error | undefined): void {
    if (this.conn !== conn || this.state === 'closed') return;
    this.conn = undefined;
    this.stopHeartbeat();
    this.lastError = err;
    this.options.logger?.warn({ broker: this.url, err: err?.message }, 'connection to broker lost; reconnecting');
    this.scheduleReconnect(err);
  }

  private scheduleReconnect(err: Error | undefined): void {
    this.attempts++;
    if (this.attempts > this.maxAttempts) {
      this.options.logger?.error({ broker: this.url, attempts: this.attempts - 1 }, 'giving up reconnecting');
      this.setState('closed', err);
      this.failWaiters(this.downError());
      return;
    }
    this.setState('disconnected', err);
    const base = Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** Math.min(this.attempts - 1, 30));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private startHeartbeat(conn: BrokerConnection): void {
    this.heartbeatTimer = setInterval(() => {
      conn.request((opaque) => encodeVersion(opaque), this.heartbeatTimeoutMs).catch((e: unknown) => {
        if (e instanceof TimeoutError && this.conn === conn) {
          this.options.logger?.warn({ broker: this.url }, 'heartbeat unanswered; dropping the connection');
          conn.abort(new ConnectionError(`${this.url} did not answer a heartbeat within ${this.heartbeatTimeoutMs} ms`));
        }
      });
    }, this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private failWaiters(err: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
  }

  private downError(): Error {
    return new ConnectionError(`not connected to ${this.url}` +
      (this.lastError === undefined ? '' : `: ${this.lastError.message}`), { cause: this.lastError });
  }

  private setState(state: LinkState, error: Error | undefined): void {
    if (this.state === state) return;
    this.state = state;
    for (const fn of this.listeners) fn(state, error);
  }
}
