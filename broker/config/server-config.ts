/**
 * `server.ini` → {@link BrokerConfig}: MetaQ 1.4's `[system]`, `[zookeeper]` and `[topic=<name>]` sections
 * (keys and defaults in config-keys.ts), command-line overrides on top, strict validation.
 *
 * Departures from MetaQ, on purpose: unknown sections are refused as well as unknown keys; ZooKeeper is
 * optional (`zk.zkConnect` is required only with `zk.zkEnable=true`); values are range-checked instead of
 * being truncated to a Java int; and a wildcard `[topic=*]` section makes the broker accept any topic.
 */
import { readFile } from 'node:fs/promises';
import { cpus, homedir, networkInterfaces } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { ConfigError, MetaqError } from '../../sdk/errors.js';
import { topicNameProblem } from '../../sdk/protocol/names.js';
import { parseCron } from '../store/cron.js';
import { parseDeletePolicy } from '../store/retention.js';
import type { BrokerConfig, DeletePolicy, SystemConfig, TopicConfig, ZookeeperConfig } from './broker-config.js';
import {
  GROUP_FILTER_PREFIX, SECTION_SYSTEM, SECTION_ZOOKEEPER, SYSTEM_KEYS, TOPIC_KEYS, TOPIC_SECTION_PREFIX, ZOOKEEPER_KEYS,
} from './config-keys.js';
import { suggestionSuffix } from './did-you-mean.js';
import { parseIni } from './ini.js';
import { parseOverrideKey, type ConfigOverrides } from './overrides.js';
import { SectionReader, type RawSection } from './section-reader.js';

export type { ConfigOverrides } from './overrides.js';

export interface ParseConfigOptions {
  /** Named in error messages and kept as `sourceFile`. */
  readonly file?: string;
  readonly overrides?: ConfigOverrides;
  /** Base of relative paths; default process.cwd(). */
  readonly cwd?: string;
}

/** What `npm start` runs without a file: a standalone broker accepting any topic. */
const EMBEDDED_INI = `
[system]
brokerId=0
serverPort=8123
dashboardHttpPort=8120
dataPath=./data
numPartitions=4
unflushThreshold=0
stat=true
[zookeeper]
zk.zkEnable=false
[topic=*]
`;

/** Reads and parses a `server.ini` file. Throws ConfigError (also when the file cannot be read). */
export async function loadConfig(path: string, overrides?: ConfigOverrides): Promise<BrokerConfig> {
  return parseConfig(await readConfigFile(path), { file: resolvePath(path), overrides });
}

/** Parses `server.ini` text; see {@link ParseConfigOptions}. Throws ConfigError naming file:line. */
export function parseConfig(text: string, options: ParseConfigOptions = {}): BrokerConfig {
  const cwd = options.cwd ?? process.cwd();
  const raw = rawSections(text, options.file ?? '<string>', options.overrides ?? {});
  const system = resolveSystem(raw.get(SECTION_SYSTEM), cwd);
  const zookeeper = resolveZookeeper(raw.get(SECTION_ZOOKEEPER));
  const topics = resolveTopics(raw, system, cwd);
  const config: BrokerConfig = {
    system, zookeeper, topics,
    ...(options.file === undefined ? {} : { sourceFile: options.file }),
    ...(options.overrides === undefined || Object.keys(options.overrides).length === 0 ? {} : { overrides: options.overrides }),
  };
  verifyConfig(config);
  return config;
}

/**
 * The configuration `metaq server start` uses without `-c`: brokerId 0, port 8123, dashboard 8120, data in
 * `./data`, 4 partitions per topic, group commit, any topic accepted (`[topic=*]`), no ZooKeeper.
 */
export function embeddedConfig(overrides?: ConfigOverrides, cwd?: string): BrokerConfig {
  // '<embedded>' names the text in error messages; there is no source file to reload or checksum.
  const { sourceFile: _, ...config } = parseConfig(EMBEDDED_INI, { file: '<embedded>', overrides, cwd });
  return config;
}

/**
 * Re-reads only the topic sections of `path` (default: the file `current` came from), as MetaQ's reload
 * does; [system] and [zookeeper] stay as they are and topic values fall back to the current [system].
 */
export async function reloadTopics(current: BrokerConfig, path = current.sourceFile): Promise<BrokerConfig> {
  if (path === undefined || path.startsWith('<')) throw new ConfigError('Cannot reload topics: the configuration did not come from a file');
  const file = resolvePath(path);
  const raw = rawSections(await readConfigFile(file), file, current.overrides ?? {});
  const config: BrokerConfig = { ...current, topics: resolveTopics(raw, current.system, process.cwd()), sourceFile: file };
  verifyConfig(config);
  return config;
}

/** Checks rules that span several keys; parseConfig calls it, and so should code building a config by hand. */
export function verifyConfig(config: BrokerConfig): void {
  const s = config.system;
  const where = config.sourceFile === undefined ? '' : ` (${config.sourceFile})`;
  if (s.maxMessageSize > s.maxTransferSize - 20) {
    throw new ConfigError(`maxMessageSize ${s.maxMessageSize} exceeds maxTransferSize - 20 = ${s.maxTransferSize - 20}` +
      `${where}: a consumer could never fetch such a message; raise maxTransferSize or lower maxMessageSize`);
  }
  if (s.serverPort !== 0 && s.serverPort === s.dashboardHttpPort) {
    throw new ConfigError(`serverPort and dashboardHttpPort are both ${s.serverPort}${where}`);
  }
  if (config.topics.length === 0) {
    throw new ConfigError(`No [topic=<name>] section${where}: the broker would accept no topic (use [topic=*] to accept any)`);
  }
  if (config.zookeeper.zkEnable && config.zookeeper.zkConnect === '') {
    throw new ConfigError(`zk.zkConnect is required in [zookeeper] when zk.zkEnable=true${where} ` +
      '(set zk.zkEnable=false for a standalone broker)');
  }
}

async function readConfigFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new ConfigError(`Cannot read config file ${path}: ${code}`);
  }
}

/** The file's sections with the overrides applied, every section name and key checked. */
function rawSections(text: string, file: string, overrides: ConfigOverrides): Map<string, RawSection> {
  const doc = parseIni(text, file);
  const raw = new Map<string, RawSection>();
  for (const section of doc.sections) {
    const entries = new Map([...section.entries].map(([k, e]) => [k, { value: e.value, origin: `${file}:${e.line}` }]));
    raw.set(section.name, { name: section.name, origin: `${file}:${section.line}`, entries });
  }
  for (const [flat, value] of Object.entries(overrides)) {
    const { section, key } = parseOverrideKey(flat);
    const origin = `override ${flat}`;
    let target = raw.get(section);
    if (target === undefined) {
      target = { name: section, origin, entries: new Map() };
      raw.set(section, target);
    }
    target.entries.set(key, { value: value.trim(), origin });
  }
  for (const section of raw.values()) checkSection(section);
  return raw;
}

function checkSection(section: RawSection): void {
  const { name } = section;
  let known: readonly string[];
  if (name === SECTION_SYSTEM) known = Object.keys(SYSTEM_KEYS);
  else if (name === SECTION_ZOOKEEPER) known = Object.keys(ZOOKEEPER_KEYS);
  else if (name.startsWith(TOPIC_SECTION_PREFIX)) {
    const topic = name.slice(TOPIC_SECTION_PREFIX.length);
    // The broker's own rule for topic names, with `*` standing for any run of valid characters.
    const problem = topicNameProblem(topic.replaceAll('*', 'x'));
    if (problem !== undefined) {
      throw new ConfigError(`Invalid topic name ${JSON.stringify(topic)} in [${name}] (${section.origin}): ` +
        "expected letters, digits, '_', '-', '.' and '*' wildcards, not starting with '.' or '-'");
    }
    known = TOPIC_KEYS;
  } else {
    throw new ConfigError(`Invalid config section: [${name}] (${section.origin})` +
      suggestionSuffix(name, [SECTION_SYSTEM, SECTION_ZOOKEEPER, `${TOPIC_SECTION_PREFIX}${name}`]));
  }
  for (const [key, v] of section.entries) {
    if (known.includes(key)) continue;
    if (known === TOPIC_KEYS && key.startsWith(GROUP_FILTER_PREFIX) && key.length > GROUP_FILTER_PREFIX.length) continue;
    const hint = suggestionSuffix(key, known === TOPIC_KEYS ? [...known, `${GROUP_FILTER_PREFIX}<group>`] : known);
    const elsewhere = name !== SECTION_SYSTEM && key in SYSTEM_KEYS ? ` (${key} belongs in [system])`
      : name !== SECTION_ZOOKEEPER && key in ZOOKEEPER_KEYS ? ` (${key} belongs in [zookeeper])` : '';
    throw new ConfigError(`Invalid config key: ${key} in [${name}] (${v.origin})${hint}${elsewhere}`);
  }
}

function resolveSystem(section: RawSection | undefined, cwd: string): SystemConfig {
  const r = new SectionReader(section, SECTION_SYSTEM, SYSTEM_KEYS);
  const threads = 10 * Math.max(1, cpus().length);
  const dataPath = resolvePath(cwd, r.string('dataPath', resolvePath(homedir(), 'meta')));
  const maxTransferSize = r.int('maxTransferSize');
  return {
    brokerId: r.int('brokerId'),
    hostName: r.raw('hostName')?.value ?? localAddress(),
    serverPort: r.int('serverPort'),
    dashboardHttpPort: r.int('dashboardHttpPort'),
    dataPath,
    dataLogPath: resolvePath(cwd, r.string('dataLogPath', dataPath)),
    numPartitions: r.int('numPartitions'),
    unflushThreshold: r.int('unflushThreshold'),
    unflushInterval: r.int('unflushInterval'),
    maxSegmentSize: r.int('maxSegmentSize'),
    maxTransferSize,
    getProcessThreadCount: r.int('getProcessThreadCount', threads),
    putProcessThreadCount: r.int('putProcessThreadCount', threads),
    deletePolicy: deletePolicy(r),
    deleteWhen: deleteWhen(r),
    quartzThreadCount: r.int('quartzThreadCount'),
    maxCheckpoints: r.int('maxCheckpoints'),
    checkpointInterval: r.int('checkpointInterval'),
    maxTxTimeoutTimerCapacity: r.int('maxTxTimeoutTimerCapacity'),
    maxTxTimeoutInSeconds: r.int('maxTxTimeoutInSeconds'),
    flushTxLogAtCommit: r.int('flushTxLogAtCommit'),
    acceptPublish: r.bool('acceptPublish'),
    acceptSubscribe: r.bool('acceptSubscribe'),
    stat: r.bool('stat'),
    updateConsumerOffsets: r.bool('updateConsumerOffsets'),
    loadMessageStoresInParallel: r.bool('loadMessageStoresInParallel'),
    appClassPath: r.string('appClassPath'),
    ...slaveSettings(r),
    maxMessageSize: r.int('maxMessageSize', maxTransferSize - 20),
    maxLineBytes: r.int('maxLineBytes'),
    longPollTimeoutMs: r.int('longPollTimeoutMs'),
    idleTimeoutMs: r.int('idleTimeoutMs'),
    maxConnections: r.int('maxConnections'),
    diskMaxUsedRatio: r.number('diskMaxUsedRatio'),
    shutdownTimeoutMs: r.int('shutdownTimeoutMs'),
    bindHost: r.string('bindHost'),
  };
}

/** MetaQ's metaslave keys (async_slave.properties), here in [system]. */
function slaveSettings(r: SectionReader): Pick<SystemConfig, 'slaveId' | 'slaveGroup' | 'slaveMaxDelayInMills' |
  'autoSyncMasterConfig' | 'syncReplication' | 'sendToSlaveTimeoutInMills' | 'slaveContinuousFailureThreshold' |
  'checkSlaveIntervalInMills'> {
  const slaveId = r.int('slaveId');
  return { slaveId, slaveGroup: r.string('slaveGroup', `meta-slave-group_${slaveId}`),
    slaveMaxDelayInMills: r.int('slaveMaxDelayInMills'), autoSyncMasterConfig: r.bool('autoSyncMasterConfig'),
    syncReplication: r.bool('syncReplication'), sendToSlaveTimeoutInMills: r.int('sendToSlaveTimeoutInMills'),
    slaveContinuousFailureThreshold: r.int('slaveContinuousFailureThreshold'),
    checkSlaveIntervalInMills: r.int('checkSlaveIntervalInMills') };
}

function resolveZookeeper(section: RawSection | undefined): ZookeeperConfig {
  const r = new SectionReader(section, SECTION_ZOOKEEPER, ZOOKEEPER_KEYS);
  const connect = r.raw('zk.zkConnect');
  if (connect !== undefined && !/^[^\s,/:]+(:\d{1,5})?(,[^\s,/:]+(:\d{1,5})?)*(\/\S*)?$/.test(connect.value)) {
    r.bad('zk.zkConnect', connect, "'host:port[,host:port...][/chroot]'");
  }
  const root = r.string('zk.zkRoot');
  return {
    zkEnable: r.bool('zk.zkEnable'),
    zkConnect: connect?.value ?? '',
    zkSessionTimeoutMs: r.int('zk.zkSessionTimeoutMs'),
    zkConnectionTimeoutMs: r.int('zk.zkConnectionTimeoutMs'),
    zkSyncTimeMs: r.int('zk.zkSyncTimeMs'),
    // As MetaQ normalises it: one leading '/', no trailing '/'.
    zkRoot: '/' + root.replace(/^\/+|\/+$/g, ''),
  };
}

function resolveTopics(raw: Map<string, RawSection>, system: SystemConfig, cwd: string): TopicConfig[] {
  const topics: TopicConfig[] = [];
  for (const section of raw.values()) {
    if (!section.name.startsWith(TOPIC_SECTION_PREFIX)) continue;
    const r = new SectionReader(section, section.name, SYSTEM_KEYS);
    const groupFilters = new Map<string, string>();
    for (const [key, v] of section.entries) {
      if (key.startsWith(GROUP_FILTER_PREFIX) && v.value !== '') groupFilters.set(key.slice(GROUP_FILTER_PREFIX.length), v.value);
    }
    const dataPath = r.raw('dataPath');
    topics.push({
      name: section.name.slice(TOPIC_SECTION_PREFIX.length),
      numPartitions: r.int('numPartitions', system.numPartitions),
      unflushThreshold: r.int('unflushThreshold', system.unflushThreshold),
      unflushInterval: r.int('unflushInterval', system.unflushInterval),
      deletePolicy: deletePolicy(r, system.deletePolicy),
      deleteWhen: deleteWhen(r, system.deleteWhen),
      dataPath: dataPath === undefined ? system.dataPath : resolvePath(cwd, dataPath.value),
      acceptPublish: r.bool('acceptPublish', system.acceptPublish),
      acceptSubscribe: r.bool('acceptSubscribe', system.acceptSubscribe),
      stat: r.bool('stat', system.stat),
      groupFilters,
    });
  }
  return topics;
}

function deletePolicy(r: SectionReader, fallback?: DeletePolicy): DeletePolicy {
  const given = r.raw('deletePolicy');
  if (given === undefined && fallback !== undefined) return fallback;
  const raw = given ?? { value: SYSTEM_KEYS.deletePolicy.default, origin: 'default' };
  try {
    return parseDeletePolicy(raw.value);
  } catch (e) {
    if (!(e instanceof MetaqError)) throw e;
    return r.bad('deletePolicy', raw, `'delete,<age>' or 'archive,<age>[,zip]' (${e.message})`);
  }
}

function deleteWhen(r: SectionReader, fallback?: string): string {
  const raw = r.raw('deleteWhen');
  if (raw === undefined) return fallback ?? SYSTEM_KEYS.deleteWhen.default;
  try {
    parseCron(raw.value);
  } catch (e) {
    if (!(e instanceof MetaqError)) throw e;
    r.bad('deleteWhen', raw, `a Quartz cron expression (sec min hour day-of-month month day-of-week [year]): ${e.message}`);
  }
  return raw.value;
}

/** MetaQ publishes the local IP by default: the first non-internal IPv4 address. */
function localAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
