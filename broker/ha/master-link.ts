/**
 * A connection to the other node of a master/slave pair (the slave's to its master, the sync master's to its slave):
 * one pipelined MetaQ protocol connection shared by every partition's fetch loop or forwarded put (requests matched
 * by opaque, so long polls of many partitions wait side by side). A dropped connection fails the requests in flight;
 * the next request opens a new one. Closing it fails everything in flight for good.
 */
import { ConnectionError, ErrorCodes, MetaqError, ShuttingDownError } from '../../sdk/errors.js';
import { parseBrokerUrl } from '../../sdk/protocol/broker-url.js';
import { Status, type Response } from '../../sdk/protocol/commands.js';
import { encodeStats } from '../../sdk/protocol/encode.js';
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

/**
 * The peer's partition ends from `stats offsets` (lines `<topic> part <p> min_offset <a> max_offset <b>`), keyed
 * `<topic>\u0000<partition>`.
 */
export async function readPartitionEnds(link: MasterLink): Promise<Map<string, number>> {
  const body = await link.requestOk((opaque) => encodeStats({ item: 'offsets', opaque }), 'stats offsets');
  const ends = new Map<string, number>();
  for (const line of body.toString('utf8').split('\r\n')) {
    const m = /^(\S+) part (\d+) min_offset (\d+) max_offset (\d+)$/.exec(line);
    if (m !== null) ends.set(`${m[1]!}\u0000${m[2]!}`, Number(m[4]));
  }
  return ends;
}
