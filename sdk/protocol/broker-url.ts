import { InvalidArgumentError } from '../errors.js';

/**
 * Where a broker listens.
 *
 * @example
 * ```ts
 * const { host, port }: BrokerAddress = parseBrokerUrl('meta://[::1]:8123');   // host '::1', without brackets
 * ```
 */
export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses MetaQ's broker URL `meta://host:port` (IPv6 as `meta://[::1]:8123`; a `?slaveId=N` suffix is ignored).
 *
 * @example
 * ```ts
 * parseBrokerUrl('meta://127.0.0.1:8123'); // { host: '127.0.0.1', port: 8123 }
 * ```
 */
export function parseBrokerUrl(url: string): BrokerAddress {
  const m = /^meta:\/\/(\[[0-9a-fA-F:.]+\]|[^:/?\s[\]]+):(\d{1,5})(?:\?.*)?$/.exec(url);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`invalid broker URL ${JSON.stringify(url)}: expected meta://host:port`);
  }
  const host = m[1]!;
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port };
}

/**
 * `meta://host:port` for an address.
 *
 * @example
 * ```ts
 * formatBrokerUrl({ host: '::1', port: 8123 }); // 'meta://[::1]:8123': brackets so the port stays parseable
 * ```
 */
export function formatBrokerUrl(a: BrokerAddress): string {
  return `meta://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
