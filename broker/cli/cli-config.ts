/**
 * The configuration the `metaq server ...` commands act on: `-c server.ini` (or the embedded defaults) with
 * the command-line flags applied as overrides, validated exactly like the file.
 */
import { join, resolve } from 'node:path';
import type { BrokerConfig } from '../config/broker-config.js';
import { parseAssignment, type ConfigOverrides } from '../config/overrides.js';
import { embeddedConfig, loadConfig } from '../config/server-config.js';

export interface ConfigFlags {
  readonly config?: string;
  readonly port?: string;
  readonly dataPath?: string;
  readonly brokerId?: string;
  /** `server start --zk host:port`: cluster mode with this ZooKeeper. */
  readonly zk?: string;
  /** `section.key=value` assignments, in order (a later one wins). */
  readonly set?: readonly string[];
}

/** The overrides the flags stand for: `--port` is `system.serverPort`, and so on. */
export function overridesFromFlags(flags: ConfigFlags): ConfigOverrides {
  const overrides: Record<string, string> = {};
  for (const assignment of flags.set ?? []) {
    const [key, value] = parseAssignment(assignment);
    overrides[key] = value;
  }
  // The dedicated flags win over --set: they are the more specific request.
  if (flags.port !== undefined) overrides['system.serverPort'] = flags.port;
  if (flags.dataPath !== undefined) overrides['system.dataPath'] = flags.dataPath;
  if (flags.brokerId !== undefined) overrides['system.brokerId'] = flags.brokerId;
  if (flags.zk !== undefined) {
    overrides['zookeeper.zk.zkEnable'] = 'true';
    overrides['zookeeper.zk.zkConnect'] = flags.zk;
  }
  return overrides;
}

/** Loads `-c` (or the embedded defaults) with the flags applied. Throws ConfigError. */
export async function configFromFlags(flags: ConfigFlags): Promise<BrokerConfig> {
  const overrides = overridesFromFlags(flags);
  return flags.config === undefined ? embeddedConfig(overrides) : loadConfig(flags.config, overrides);
}

/** `--pid-file`, else `<dataPath>/metaq.pid`, as an absolute path. */
export function pidFilePath(config: BrokerConfig, flag?: string): string {
  return resolve(flag ?? join(config.system.dataPath, 'metaq.pid'));
}

/** Where a local client reaches the broker: its bind address, or loopback when it binds every address. */
export function localHost(config: BrokerConfig): string {
  const bind = config.system.bindHost;
  return bind === '0.0.0.0' || bind === '::' || bind === '' ? '127.0.0.1' : bind;
}
