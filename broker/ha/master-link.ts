/**
 * The slave's connection to its master: one pipelined MetaQ protocol connection shared by every partition's fetch
 * loop (requests matched by opaque, so long polls of many partitions wait side by side). A dropped connection fails
 * the requests in flight; the next request opens a new one. Closing it fails everything in flight for good.
 */
import { ConnectionError, ErrorCodes, MetaqError, ShuttingDownError } from '../../sdk/errors.js';
import { parseBrokerUrl } from '../../sdk/protocol/broker-url.js';
import { Status, type Response } from '../../sdk/protocol/commands.js';
import { BrokerClient } from '../cli/broker-client.js';

export class MasterLink {
  private client: BrokerClient | undefined;
  private closed = false;

  /**
   * @param url the master's `meta://host:port`
   * @param timeoutMs per request; must exceed the master's long-poll wait
   */
  constructor(readonly url: string, private readonly timeoutMs: number) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends `build(opaque)`; rejects with ConnectionError / TimeoutError (retriable) or ShuttingDownError once closed. */
  async request(build: (opaque: number) => Buffer): Promise<Response> {
    if (this.closed) throw new ShuttingDownError(`link to master ${this.url}`);
    let c = this.client;
    if (c === undefined) {
      c = new BrokerClient(parseBrokerUrl(this.url), this.timeoutMs);
      this.client = c;
    }
    try {
      return await c.request(build);
    } catch (err) {
      // The client's failure is sticky: drop it so that the next request reconnects.
      if (err instanceof ConnectionError && this.client === c) {
        this.client = undefined;
        c.close();
      }
      if (this.closed) throw new ShuttingDownError(`link to master ${this.url}`);
      throw err;
    }
  }

  /** {@link request} for a command the master answers with a 200 result: its body; any other answer throws {@link masterError}. */
  async requestOk(build: (opaque: number) => Buffer, what: string): Promise<Buffer> {
    const res = await this.request(build);
    if (res.type !== 'result' || res.code !== Status.OK) throw masterError(res, what);
    return res.body;
  }

  close(): void {
    this.closed = true;
    this.client?.close();
    this.client = undefined;
  }
}

/** The retriable error for an unexpected answer of the master to `what`. */
export function masterError(res: Response, what: string): MetaqError {
  const text = res.body.toString('utf8', 0, Math.min(res.body.length, 300));
  return new MetaqError(ErrorCodes.BROKER, `${what}: master answered ${res.type === 'result' ? res.code : 'value'} ${text}`,
    { retriable: true });
}
