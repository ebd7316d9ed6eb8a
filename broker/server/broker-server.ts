import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { BrokerContext } from './broker-context.js';
import { Connection, type ConnectionOwner } from './connection.js';

/**
 * The TCP front of the broker: accepts connections (up to maxConnections), and flushes the replies of every
 * connection that produced some once per event-loop turn.
 */
export class BrokerServer implements ConnectionOwner {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private dirty: Connection[] = [];
  private flushScheduled = false;
  private drained: (() => void) | undefined;
  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const list = this.dirty;
    this.dirty = [];
    for (const c of list) c.flush();
  };

  constructor(private readonly ctx: BrokerContext) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => ctx.logger.error({ err }, 'server socket error'));
  }

  /** Listens on the configured host and port (port 0 picks a free one); resolves with the bound port. */
  async listen(): Promise<number> {
    const { bindHost, serverPort } = this.ctx.config.system;
    this.server.listen({ host: bindHost, port: serverPort, backlog: 1024 });
    await once(this.server, 'listening');
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('server did not bind a TCP port');
    return addr.port;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: Socket): void {
    if (this.connections.size >= this.ctx.config.system.maxConnections) {
      this.ctx.logger.warn({ remote: socket.remoteAddress, max: this.ctx.config.system.maxConnections },
        'refusing connection: maxConnections reached');
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this.ctx, this);
    this.connections.add(conn);
    this.ctx.stats.currentConnections = this.connections.size;
  }

  markDirty(conn: Connection): void {
    this.dirty.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAll);
    }
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn);
    this.ctx.stats.currentConnections = this.connections.size;
    if (this.connections.size === 0) this.drained?.();
  }

  /**
   * Stops accepting connections and requests; resolves once every request already received has been answered
   * (puts after they are stored) and the connections are closed, or after `timeoutMs` (then they are cut).
   */
  async close(timeoutMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const drained = this.connections.size === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => { this.drained = resolve; });
    for (const c of this.connections) c.endGracefully();
    this.ctx.longPoll.cancelAll();
    const cut = setTimeout(() => {
      this.ctx.logger.warn({ connections: this.connections.size, held: [...this.connections].map((c) =>
        `${c.socket.remoteAddress ?? '?'}:${c.socket.remotePort ?? '?'} in flight ${c.inFlight}`) },
      'shutdown timeout: closing connections');
      for (const c of this.connections) c.socket.destroy();
    }, timeoutMs);
    await drained;
    clearTimeout(cut);
    await closed;
  }
}
