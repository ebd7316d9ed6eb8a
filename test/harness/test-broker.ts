import pino from 'pino';
import { startBroker, type Broker } from '../../broker/broker.js';
import { embeddedConfig } from '../../broker/config/server-config.js';
import type { ConfigOverrides } from '../../broker/config/overrides.js';
import type { FileIO } from '../../broker/store/file-io.js';
import { tempDir } from './temp-dir.js';

export interface TestBroker {
  readonly broker: Broker;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the broker (graceful) and keeps the data dir. */
  stop(): Promise<void>;
  /** Starts a new broker on the same data dir (and the same overrides). */
  restart(): Promise<TestBroker>;
  /** Stops the broker and removes its data dir. */
  dispose(): Promise<void>;
}

/**
 * An in-process broker on embedded defaults, a free port and a temp data dir; `overrides` as the command line's
 * `--set section.key=value` (e.g. `{ 'system.unflushThreshold': '100' }`).
 */
export async function startTestBroker(overrides: ConfigOverrides = {}, options: { fileIO?: FileIO } = {}):
Promise<TestBroker> {
  return startOn(await tempDir('metaq-broker-'), overrides, options);
}

async function startOn(dir: { path: string; remove(): Promise<void> }, overrides: ConfigOverrides,
  options: { fileIO?: FileIO }): Promise<TestBroker> {
  const config = embeddedConfig({ 'system.serverPort': '0', 'system.dashboardHttpPort': '0', 'system.dataPath': dir.path,
    ...overrides });
  const broker = await startBroker(config, {
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    ...(options.fileIO === undefined ? {} : { fileIO: options.fileIO }),
  });
  const self: TestBroker = {
    broker,
    port: broker.port,
    dataDir: dir.path,
    stop: () => broker.close(),
    restart: async () => {
      await broker.close();
      return startOn(dir, overrides, options);
    },
    dispose: async () => {
      await broker.close();
      await dir.remove();
    },
  };
  return self;
}
