/**
 * `metaq stats [item]` and `metaq topics`: sends `stats <item>` to a broker and prints the body it answers
 * (MetaQ's BrokerStatsTool). `metaq stats help` lists the items the broker knows.
 */
import { encodeStats } from '../../sdk/protocol/encode.js';
import { requestOnce } from './broker-client.js';
import { configFromFlags, localHost, type ConfigFlags } from './cli-config.js';

export interface StatsFlags extends ConfigFlags {
  readonly host?: string;
  readonly timeout?: string;
}

export async function statsCommand(item: string, flags: StatsFlags): Promise<number> {
  // Host and port come from the flags, else from the configuration (-c, or the embedded defaults).
  const config = await configFromFlags(flags);
  const host = flags.host ?? localHost(config);
  const port = config.system.serverPort;
  const res = await requestOnce({ host, port }, (opaque) => encodeStats({ item, opaque }), Number(flags.timeout ?? 10_000));
  const body = res.body.toString('utf8');
  if (res.type !== 'result' || res.code !== 200) {
    process.stderr.write(`metaq: ${host}:${port} answered ${res.type === 'result' ? res.code : 'value'}: ${body}\n`);
    return 1;
  }
  process.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
  return 0;
}
