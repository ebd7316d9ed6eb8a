/**
 * Overrides: `section.key` → value pairs applied on top of `server.ini` with the same validation. This is
 * what command-line flags produce (`--port 9000` is `system.serverPort=9000`, `--set` passes one through).
 *
 * ```
 * system.serverPort=9000
 * zookeeper.zk.zkConnect=10.0.0.1:2181          (the key itself contains dots)
 * topic=orders.numPartitions=8                  (the section name contains '=')
 * topic=app.events.group.billing=MyFilter       (topic names and group names may contain dots)
 * ```
 */
import { ConfigError } from '../../sdk/errors.js';
import { GROUP_FILTER_PREFIX, TOPIC_KEYS, TOPIC_SECTION_PREFIX } from './config-keys.js';

/** Flat `section.key` → value map; see the module comment for the syntax of keys. */
export type ConfigOverrides = Readonly<Record<string, string>>;

/**
 * Splits a flat override key into section and key. A topic name may contain dots, so for `topic=` keys
 * the split is at the last dot followed by a known topic key, else before the first `.group.`; anything
 * else splits at the last dot and is then refused by validation with a suggestion.
 */
export function parseOverrideKey(flat: string): { section: string; key: string } {
  if (flat.startsWith(TOPIC_SECTION_PREFIX)) {
    const rest = flat.slice(TOPIC_SECTION_PREFIX.length);
    for (let dot = rest.lastIndexOf('.'); dot > 0; dot = rest.lastIndexOf('.', dot - 1)) {
      const key = rest.slice(dot + 1);
      if ((TOPIC_KEYS as readonly string[]).includes(key)) return { section: TOPIC_SECTION_PREFIX + rest.slice(0, dot), key };
    }
    const group = rest.indexOf('.' + GROUP_FILTER_PREFIX);
    if (group > 0) return { section: TOPIC_SECTION_PREFIX + rest.slice(0, group), key: rest.slice(group + 1) };
    const dot = rest.lastIndexOf('.');
    if (dot > 0 && dot < rest.length - 1) return { section: TOPIC_SECTION_PREFIX + rest.slice(0, dot), key: rest.slice(dot + 1) };
  } else {
    const dot = flat.indexOf('.');
    if (dot > 0 && dot < flat.length - 1) return { section: flat.slice(0, dot), key: flat.slice(dot + 1) };
  }
  throw new ConfigError(`Invalid override ${JSON.stringify(flat)}: expected <section>.<key>, e.g. system.serverPort`);
}

/** Parses `section.key=value` (as given to `--set`) into a flat key and a value. */
export function parseAssignment(text: string): [string, string] {
  // The '=' of a `topic=` section name is not the assignment.
  const from = text.startsWith(TOPIC_SECTION_PREFIX) ? TOPIC_SECTION_PREFIX.length : 0;
  const eq = text.indexOf('=', from);
  if (eq <= from) {
    throw new ConfigError(`Invalid setting ${JSON.stringify(text)}: expected <section>.<key>=<value>, e.g. system.serverPort=9000`);
  }
  const flat = text.slice(0, eq).trim();
  parseOverrideKey(flat);
  return [flat, text.slice(eq + 1).trim()];
}
