/**
 * What names the protocol accepts. A topic becomes a directory name on the broker (`<topic>-<partition>`) and a
 * znode name in ZooKeeper, so it must be a plain file name: letters, digits, `_`, `-` and `.`, not starting with
 * `.` or `-` (no `..`, no path separators, no hidden files). Groups follow MetaQ's rule (no
 * ``~!#$%^&*()+=`'",;/?[]<>.:`` and no whitespace).
 */

/** Longest topic name (a directory name plus `-<partition>` must stay under 255 bytes). */
export const MAX_TOPIC_LENGTH = 200;

const TOPIC = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const GROUP_FORBIDDEN = /[~!#$%^&*()+=`'",;/?[\]<>.:\s]/;

/** Why `topic` is not an acceptable topic name, or undefined when it is. */
export function topicNameProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'Blank topic';
  if (topic.length > MAX_TOPIC_LENGTH) return `topic name longer than ${MAX_TOPIC_LENGTH} characters`;
  if (!TOPIC.test(topic)) {
    return `invalid topic name ${JSON.stringify(topic)}: use letters, digits, '_', '-' and '.', not starting with '.' or '-'`;
  }
  return undefined;
}

const TOPIC_PATTERN = /^[A-Za-z0-9_*][A-Za-z0-9_.*-]*$/;

/**
 * Why `name` is neither a topic name nor a topic pattern with `*` wildcards (a broker's `[topic=app.*]` section is
 * registered in ZooKeeper under its pattern, and a producer may name it as its default topic), or undefined.
 */
export function topicPatternProblem(name: string): string | undefined {
  if (!name.includes('*')) return topicNameProblem(name);
  if (name.length > MAX_TOPIC_LENGTH) return `topic pattern longer than ${MAX_TOPIC_LENGTH} characters`;
  if (!TOPIC_PATTERN.test(name)) return `invalid topic pattern ${JSON.stringify(name)}: use letters, digits, '_', '-', '.' and '*'`;
  return undefined;
}

/** Why `group` is not an acceptable consumer group name, or undefined when it is. */
export function groupNameProblem(group: string): string | undefined {
  if (group.trim().length === 0) return 'Blank group';
  const bad = GROUP_FORBIDDEN.exec(group);
  if (bad !== null) return `invalid group name ${JSON.stringify(group)}: it contains ${JSON.stringify(bad[0])}`;
  return undefined;
}
