import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Response, ResultResponse } from '../../sdk/protocol/commands.js';
import {
  encodeGet, encodeOffset, encodePut, encodeStats, encodeTransaction, encodeVersion, type TransactionFrame,
} from '../../sdk/protocol/encode.js';
import { crc32Masked } from '../../sdk/protocol/record.js';
import { ResponseDecoder } from '../../sdk/protocol/response-decoder.js';

interface Pending {
  resolve(r: Response): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A plain-socket MetaQ protocol client for tests: requests are pipelined and replies matched by opaque,
 * exactly as MetaQ's clients do. Frames can also be written raw (`send`) to test malformed input.
 */
export class RawClient {
  private readonly decoder = new ResponseDecoder({ maxBodyBytes: 64 * 1024 * 1024 });
  private readonly pending = new Map<number, Pending>();
  private opaque = 0;
  /** Every response received, in arrival order. */
  readonly received: Response[] = [];
  readonly closed: Promise<void>;
  private isClosed = false;

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.isClosed = true;
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error('connection closed'));
      }
      this.pending.clear();
      resolve();
    }));
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = connect({ port, host });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  get connected(): boolean {
    return !this.isClosed;
  }

  nextOpaque(): number {
    this.opaque = (this.opaque + 1) | 0;
    return this.opaque;
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    for (let r = this.decoder.next(); r !== undefined; r = this.decoder.next()) {
      this.received.push(r);
      const p = this.pending.get(r.opaque);
      if (p !== undefined) {
        this.pending.delete(r.opaque);
        clearTimeout(p.timer);
        p.resolve(r);
      }
    }
  }

  /** Writes bytes as they are. */
  send(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Sends a frame and waits for the reply carrying `opaque`. */
  request(frame: Buffer | string, opaque: number, timeoutMs = 10_000): Promise<Response> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(opaque);
        reject(new Error(`no reply to opaque ${opaque} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(opaque, { resolve, reject, timer });
      this.socket.write(frame);
    });
  }

  async put(topic: string, partition: number, body: Buffer | string,
    options: { flag?: number; checksum?: number; txKey?: string } = {}): Promise<ResultResponse> {
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    const opaque = this.nextOpaque();
    const r = await this.request(encodePut({
      topic, partition, flag: options.flag ?? 0, checksum: options.checksum ?? crc32Masked(data), opaque, body: data,
      transactionKey: options.txKey ?? null,
    }), opaque);
    if (r.type !== 'result') throw new Error(`put answered ${r.type}`);
    return r;
  }

  /**
   * Sends a `transaction` frame and waits for its result; END gets no reply (as in MetaQ), so it resolves with null
   * once written.
   */
  async transaction(frame: Omit<TransactionFrame, 'opaque' | 'sessionId'> & { sessionId?: string }):
  Promise<ResultResponse | null> {
    const opaque = this.nextOpaque();
    const bytes = encodeTransaction({ sessionId: 'raw-client', ...frame, opaque });
    if (frame.transactionType === 'END') {
      this.socket.write(bytes);
      return null;
    }
    const r = await this.request(bytes, opaque);
    if (r.type !== 'result') throw new Error(`transaction answered ${r.type}`);
    return r;
  }

  get(topic: string, group: string, partition: number, offset: number, maxSize = 1024 * 1024): Promise<Response> {
    const opaque = this.nextOpaque();
    return this.request(encodeGet({ topic, group, partition, offset, maxSize, opaque }), opaque);
  }

  offset(topic: string, group: string, partition: number, offset: number): Promise<Response> {
    const opaque = this.nextOpaque();
    return this.request(encodeOffset({ topic, group, partition, offset, opaque }), opaque);
  }

  async stats(item = ''): Promise<string> {
    const opaque = this.nextOpaque();
    const r = await this.request(encodeStats({ item, opaque }), opaque);
    return r.body.toString('utf8');
  }

  async version(): Promise<string> {
    const opaque = this.nextOpaque();
    return (await this.request(encodeVersion(opaque), opaque)).body.toString('utf8');
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.socket.end();
    await this.closed;
  }
}

/** Text of a result body. */
export function bodyText(r: Response): string {
  return r.body.toString('utf8');
}
