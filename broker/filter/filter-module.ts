/**
 * Loads the module a `group.<name>=<module>` line names. The module is a file path: absolute, or relative to
 * `appClassPath` (itself relative to the working directory; blank = the working directory). TypeScript works as
 * well as JavaScript, since the broker runs under tsx. The contract is one named export:
 *
 * ```ts
 * // filters/vip-only.ts
 * import type { FilterMessage } from 'metaq/broker'; // or declare the fields you read
 * export function accept(group: string, message: FilterMessage): boolean {
 *   return message.attribute === 'vip';
 * }
 * ```
 *
 * A CommonJS module may assign `exports.accept` (or `module.exports = { accept }`). Anything else (no file, a
 * syntax error, no `accept` function) is a ConfigError naming the section, the group and the path.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../sdk/errors.js';
import type { AcceptFunction } from './filter-message.js';

/** Where a filter is configured, for error messages. */
export interface FilterOrigin {
  /** The topic section's name (after `topic=`). */
  readonly section: string;
  readonly group: string;
  /** The value as written in server.ini. */
  readonly module: string;
}

/** The absolute path of a filter module named `spec` under `appClassPath` (see the module comment). */
export function resolveFilterPath(spec: string, appClassPath: string, cwd = process.cwd()): string {
  if (isAbsolute(spec)) return spec;
  return resolve(cwd, appClassPath, spec);
}

/** Describes where a filter came from: `group 'g' in [topic=t] (module 'f.ts' → /abs/f.ts)`. */
export function describeOrigin(origin: FilterOrigin, path: string): string {
  return `server-side filter of group '${origin.group}' in [topic=${origin.section}] (module '${origin.module}' → ${path})`;
}

/**
 * Imports the module at `path` and returns its `accept` function. The import URL carries the file's mtime, so a
 * config reload picks up a changed ES module (CommonJS modules stay as first loaded).
 */
export async function loadFilterModule(path: string, origin: FilterOrigin): Promise<AcceptFunction> {
  const where = describeOrigin(origin, path);
  let mtimeMs: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a file');
    mtimeMs = st.mtimeMs;
  } catch (err) {
    throw new ConfigError(`Cannot load the ${where}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' :
      (err as Error).message}`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`${pathToFileURL(path).href}?mtime=${mtimeMs}`)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`Cannot load the ${where}: ${(err as Error).message}`);
  }
  const accept = findAccept(mod);
  if (accept === undefined) {
    const names = Object.keys(mod).join(', ') || 'nothing';
    throw new ConfigError(`The ${where} does not export an accept(group, message) function (it exports: ${names})`);
  }
  return accept;
}

function findAccept(mod: Record<string, unknown>): AcceptFunction | undefined {
  if (typeof mod.accept === 'function') return mod.accept as AcceptFunction;
  // `module.exports = { accept }` that Node's CommonJS export detection did not see.
  const cjs = mod.default;
  if (typeof cjs === 'object' && cjs !== null && typeof (cjs as { accept?: unknown }).accept === 'function') {
    return (cjs as { accept: AcceptFunction }).accept;
  }
  return undefined;
}
