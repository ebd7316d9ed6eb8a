/**
 * The broker's pid file (`<dataPath>/metaq.pid` by default): one decimal pid and a newline, as init scripts
 * expect (`kill $(cat metaq.pid)` works). A pid file whose process is gone is stale and may be replaced.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../../sdk/errors.js';

/** The pid recorded in `path`, or undefined when the file is absent or does not hold a pid. */
export async function readPid(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Records this process in `path`. Throws ConfigError when the file names another live process: two brokers
 * on one data directory would corrupt each other's segments.
 */
export async function claimPidFile(path: string, pid = process.pid): Promise<void> {
  const existing = await readPid(path);
  if (existing !== undefined && existing !== pid && isAlive(existing)) {
    throw new ConfigError(`another broker is running (pid ${existing}, pid file ${path})`);
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${pid}\n`);
}

/** Removes `path` if it still names `pid` (a newer broker may have claimed it since). */
export async function releasePidFile(path: string, pid = process.pid): Promise<void> {
  if ((await readPid(path)) === pid) await rm(path, { force: true });
}
