/**
 * A small pipelined MetaQ protocol client for the admin commands: one connection per broker, requests matched by
 * opaque, each with its own deadline. The cluster commands ask a broker several things (version, stats, offsets of
 * many partitions) on one connection; `requestOnce` serves the commands that ask one thing.
 */
import { connect, type Socket } from 'node:net';
import { ConnectionError, TimeoutError } from '../../sdk/errors.js';
import type { Response } from '../../sdk/protocol/commands.js';
import type { BrokerAddress } from '../../sdk/protocol/broker-url.js';
import { ResponseDecoder } from '../../sdk/protocol/response-decoder.js';

interface Pending {
  readonly resolve: (res: Response) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class BrokerClient {
  private socket: Socket | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextOpaque = 1;
  private failure: Error | undefined;
  private readonly name: string;

  constructor(private readonly address: BrokerAddress, private readonly timeoutMs: number) {
    this.name = address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
  }

  /**
   * Sends the frame `build(opaque)` and resolves with its answer. Rejects with ConnectionError when the broker
   * cannot be reached or drops the connection, TimeoutError when no answer comes within the timeout.
   */
  request(build: (opaque: number) => Buffer): Promise<Response> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const opaque = this.nextOpaque++;
    const frame = build(opaque);
    return new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(opaque);
        reject(new TimeoutError(`no answer from ${this.name} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(opaque, { resolve, reject, timer });
      this.connection().write(frame);
    });
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.fail(new ConnectionError(`connection to ${this.name} closed`));
    this.socket?.destroy();
  }

  private connection(): Socket {
    if (this.socket !== undefined) return this.socket;
    const decoder = new ResponseDecoder({ maxBodyBytes: 64 * 1024 * 1024 });
    const socket = connect({ host: this.address.host, port: this.address.port });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
        for (let res = decoder.next(); res !== undefined; res = decoder.next()) {
          const p = this.pending.get(res.opaque);
          if (p === undefined) continue;
          this.pending.delete(res.opaque);
          clearTimeout(p.timer);
          p.resolve(res);
        }
      } catch (e) {
        this.fail(new ConnectionError(`unreadable answer from ${this.name}: ${(e as Error).message}`, { cause: e }));
        socket.destroy();
      }
    });
    socket.on('error', (e) => this.fail(new ConnectionError(`cannot reach ${this.name}: ${e.message}`, { cause: e })));
    socket.on('close', () => this.fail(new ConnectionError(`${this.name} closed the connection before answering`)));
    this.socket = socket;
    return socket;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.failure);
    }
    this.pending.clear();
  }
}

/**
 * One request on a connection of its own, closed after the answer: for the commands that ask a broker one thing
 * (`stats`, `version`). The timeout covers the whole exchange, connection included.
 */
export async function requestOnce(address: BrokerAddress, build: (opaque: number) => Buffer, timeoutMs: number): Promise<Response> {
  const client = new BrokerClient(address, timeoutMs);
  try {
    return await client.request(build);
  } finally {
    client.close();
  }
}
