/**
 * A strict INI reader for `server.ini`, keeping the line of every section and key for error messages.
 *
 * Accepted grammar (one construct per line, surrounding whitespace trimmed):
 * ```
 * ; comment            # comment            (only as the first non-blank character of a line)
 * [section name]
 * key = value          (split at the first '='; the value may contain '=', '#', ';')
 * ```
 * Comments are whole lines only: Quartz cron syntax uses `#` (`0 0 6 ? * 6#3`), so an inline `#` stays in
 * the value and the cron parser explains what it does not support, instead of the value being cut silently. A duplicate section or a duplicate key within a section is refused:
 * ini4j silently keeps one of them, which hides typos in a broker's configuration.
 */
import { ConfigError } from '../../sdk/errors.js';

/** One `key=value` line. */
export interface IniEntry {
  readonly key: string;
  readonly value: string;
  /** 1-based line number. */
  readonly line: number;
}

/** One `[name]` section with its entries in file order. */
export interface IniSection {
  readonly name: string;
  readonly line: number;
  readonly entries: ReadonlyMap<string, IniEntry>;
}

/** A parsed INI text. */
export interface IniDocument {
  /** Used in error messages: the file path, or `<string>` for parsed text. */
  readonly file: string;
  /** Sections in file order. */
  readonly sections: readonly IniSection[];
}

/**
 * Parses INI text. Throws ConfigError naming `file:line` for a line that is neither a comment, a section
 * header nor `key=value`, for a key outside any section, and for duplicate sections or keys.
 */
export function parseIni(text: string, file = '<string>'): IniDocument {
  const sections: IniSection[] = [];
  const byName = new Map<string, IniSection>();
  let current: { name: string; line: number; entries: Map<string, IniEntry> } | undefined;
  // A UTF-8 BOM written by some editors would otherwise become part of the first section name.
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw new ConfigError(`Malformed section header ${JSON.stringify(line)} (${file}:${lineNo})`);
      const name = line.slice(1, -1).trim();
      if (name === '') throw new ConfigError(`Empty section name (${file}:${lineNo})`);
      const previous = byName.get(name);
      if (previous !== undefined) {
        throw new ConfigError(`Duplicate section [${name}] (${file}:${lineNo}), first defined at line ${previous.line}`);
      }
      current = { name, line: lineNo, entries: new Map() };
      sections.push(current);
      byName.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) {
      throw new ConfigError(`Expected 'key=value', a [section] or a comment, got ${JSON.stringify(line)} (${file}:${lineNo})`);
    }
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === '') throw new ConfigError(`Missing key before '=' (${file}:${lineNo})`);
    if (current === undefined) {
      throw new ConfigError(`Key ${key} outside any section (${file}:${lineNo}): put it under [system], [zookeeper] or [topic=<name>]`);
    }
    const previous = current.entries.get(key);
    if (previous !== undefined) {
      throw new ConfigError(
        `Duplicate key ${key} in [${current.name}] (${file}:${lineNo}), first defined at line ${previous.line}`);
    }
    current.entries.set(key, { key, value, line: lineNo });
  }
  return { file, sections };
}
