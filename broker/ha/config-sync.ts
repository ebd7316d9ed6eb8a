/**
 * `autoSyncMasterConfig`: the slave takes its master's topic sections. MetaQ's slave overwrote its whole
 * server.ini with the master's (`stats config`) and reloaded; here the slave keeps its own `[system]` and
 * `[zookeeper]` sections (its port, data path, slaveId: taking the master's would make it a second master on
 * the master's directories) and replaces only the `[topic=...]` sections, minus any per-topic `dataPath` (a path
 * of the master's machine). The file is rewritten atomically and the new sections apply to partitions created
 * from then on.
 */
import { rename, readFile, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ErrorCodes, MetaqError } from '../../sdk/errors.js';
import { encodeStats } from '../../sdk/protocol/encode.js';
import type { BrokerConfig } from '../config/broker-config.js';
import { reloadTopics } from '../config/server-config.js';
import type { MasterLink } from './master-link.js';

interface Section { readonly header: string | null; readonly lines: string[] }

function sections(text: string): Section[] {
  const out: Section[] = [{ header: null, lines: [] }];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*\[([^\]]*)\]/.exec(line);
    if (m !== null) out.push({ header: m[1]!.trim(), lines: [line] });
    else out[out.length - 1]!.lines.push(line);
  }
  return out;
}

const isTopic = (s: Section): boolean => s.header?.startsWith('topic=') === true;

/** The `[topic=...]` sections of a server.ini, without `dataPath` lines, comments and blank lines. */
export function topicSectionsText(text: string): string {
  return sections(text).filter(isTopic)
    .map((s) => s.lines.filter((l) => !/^\s*(dataPath\s*=|[;#]|$)/.test(l)).map((l) => l.trim()).join('\n'))
    .join('\n');
}

/** `local` with its topic sections replaced by those of `master` (see the file comment). */
export function mergeTopicSections(local: string, master: string): string {
  const kept = sections(local).filter((s) => !isTopic(s)).map((s) => s.lines.join('\n').replace(/\n+$/, ''));
  return `${kept.join('\n')}\n\n; topic sections taken from the master (autoSyncMasterConfig)\n${topicSectionsText(master)}\n`;
}

export interface ConfigSyncOptions {
  readonly link: MasterLink;
  readonly config: BrokerConfig;
  readonly logger: Logger;
}

/**
 * Fetches the master's server.ini and, when its topic sections differ from the slave's, rewrites the slave's file
 * and returns the reloaded configuration; undefined when nothing changed. Throws when the slave has no file.
 */
export async function syncMasterConfig(o: ConfigSyncOptions): Promise<BrokerConfig | undefined> {
  const file = o.config.sourceFile;
  if (file === undefined) {
    throw new MetaqError(ErrorCodes.CONFIG, 'autoSyncMasterConfig needs a slave started from a server.ini file');
  }
  const master = (await o.link.requestOk((opaque) => encodeStats({ item: 'config', opaque }), 'stats config')).toString('utf8');
  if (topicSectionsText(master) === '') {
    o.logger.warn({ master: o.link.url }, 'the master runs without a server.ini (or with no topic section): nothing to take');
    return undefined;
  }
  const local = await readFile(file, 'utf8');
  if (topicSectionsText(local) === topicSectionsText(master)) return undefined;
  const tmp = `${file}.tmp`;
  await writeFile(tmp, mergeTopicSections(local, master));
  await rename(tmp, file);
  const config = await reloadTopics(o.config, file);
  o.logger.info({ file, master: o.link.url, topics: config.topics.map((t) => t.name) }, 'took the master\'s topic sections');
  return config;
}
