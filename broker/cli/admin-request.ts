/**
 * One request/response exchange with a broker over the MetaQ protocol, for the admin commands
 * (`stats`, `version`). Uses the wire codec of sdk/protocol; nothing here knows the frame syntax.
 */
import { connect } from 'node:net';
import { ConnectionError, TimeoutError } from '../../sdk/errors.js';
import type { Response } from '../../sdk/protocol/commands.js';
import { ResponseDecoder } from '../../sdk/protocol/response-decoder.js';

export interface AdminRequestOptions {
  readonly host: string;
  readonly port: number;
  /** Whole exchange, connection included. */
  readonly timeoutMs: number;
}

/**
 * Sends `frame` and resolves with the response carrying `opaque`. Rejects with ConnectionError when the
 * broker cannot be reached or closes first, TimeoutError when no answer comes in time.
 */
export function adminRequest(frame: Buffer, opaque: number, options: AdminRequestOptions): Promise<Response> {
  const { host, port, timeoutMs } = options;
  return new Promise((resolve, reject) => {
    const decoder = new ResponseDecoder({ maxBodyBytes: 64 * 1024 * 1024 });
    const socket = connect({ host, port });
    let settled = false;
    const finish = (err: Error | undefined, res?: Response): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err === undefined) resolve(res!);
      else reject(err);
    };
    const timer = setTimeout(() => finish(new TimeoutError(`no answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(frame));
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
        for (let res = decoder.next(); res !== undefined; res = decoder.next()) {
          if (res.opaque === opaque) finish(undefined, res);
        }
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    });
    socket.on('error', (e) => finish(new ConnectionError(`cannot reach ${host}:${port}: ${e.message}`, { cause: e })));
    socket.on('close', () => finish(new ConnectionError(`${host}:${port} closed the connection before answering`)));
  });
}
