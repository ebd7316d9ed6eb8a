/**
 * Retention, as MetaQ's DeletePolicy: `delete,<age>` removes sealed segments whose file is older than `age`;
 * `archive,<age>[,zip]` renames them to `<name>.meta.arc` or zips them to `<name>.meta.zip` and deletes the
 * original. Age takes a suffix `s`, `m` or `h`; no suffix means hours (MetaQ's `delete,168` = 7 days).
 *
 * Two guarantees beyond MetaQ: the active segment is never touched, and only a prefix of the log goes (the first
 * segment that is too young stops the walk), so the remaining segments stay contiguous.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../../sdk/errors.js';
import type { DeletePolicy } from '../config/broker-config.js';
import type { FileIO } from './file-io.js';
import type { PartitionLog } from './partition-log.js';
import { writeZip } from './zip-writer.js';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses `delete,<age>` or `archive,<age>[,zip|true|false]`; throws ConfigError with the reason. */
export function parseDeletePolicy(text: string): DeletePolicy {
  const parts = text.split(',').map((p) => p.trim());
  const [kind, age, extra, more] = parts;
  if (kind !== 'delete' && kind !== 'archive') {
    throw new ConfigError(`deletePolicy "${text}": unknown policy "${kind ?? ''}" (expected delete,<age> or archive,<age>[,zip])`);
  }
  const m = /^(\d+(?:\.\d+)?)([smh]?)$/.exec(age ?? '');
  if (m === null) {
    throw new ConfigError(`deletePolicy "${text}": age "${age ?? ''}" must be a number with an optional s, m or h suffix (no suffix = hours)`);
  }
  const maxAgeMs = Number(m[1]) * UNIT_MS[(m[2] === '' ? 'h' : m[2]) as keyof typeof UNIT_MS];
  let compress = false;
  if (kind === 'delete' && extra !== undefined) throw new ConfigError(`deletePolicy "${text}": delete takes only an age`);
  if (extra !== undefined) {
    if (extra === 'zip' || extra === 'true') compress = true;
    else if (extra !== 'false') throw new ConfigError(`deletePolicy "${text}": third field "${extra}" must be zip, true or false`);
  }
  if (more !== undefined) throw new ConfigError(`deletePolicy "${text}": too many fields`);
  return { kind, maxAgeMs, compress, source: text };
}

export interface RetainedSegment {
  readonly topic: string;
  readonly partition: number;
  readonly segment: string;
  readonly start: number;
  readonly bytes: number;
  /** The archive file (archive policy only). */
  readonly archive?: string;
}

export interface RetentionReport {
  readonly deleted: RetainedSegment[];
  readonly archived: RetainedSegment[];
  readonly errors: { readonly segment: string; readonly error: string }[];
}

export function emptyRetentionReport(): RetentionReport {
  return { deleted: [], archived: [], errors: [] };
}

/** Applies the partition's policy at time `now`, adding what it did to `report`. */
export async function applyRetention(log: PartitionLog, now: number, io: FileIO, logger: Logger,
  report: RetentionReport): Promise<void> {
  const policy = log.config.deletePolicy;
  for (const seg of log.retainableSegments()) {
    let mtime: number;
    try { mtime = (await io.stat(seg.path)).mtimeMs; } catch (e) {
      report.errors.push({ segment: seg.path, error: String(e) });
      return;
    }
    if (now - mtime <= policy.maxAgeMs) return;
    if (log.detachOldest(seg.start) === undefined) return;
    const base = { topic: log.topic, partition: log.partition, segment: seg.path, start: seg.start, bytes: seg.size };
    try {
      if (policy.kind === 'delete') {
        await io.unlink(seg.path);
        report.deleted.push(base);
      } else if (policy.compress) {
        const archive = `${seg.path}.zip`;
        await writeZip(io, seg.path, archive, seg.path.slice(seg.path.lastIndexOf('/') + 1));
        await io.unlink(seg.path);
        report.archived.push({ ...base, archive });
      } else {
        const archive = `${seg.path}.arc`;
        await io.rename(seg.path, archive);
        report.archived.push({ ...base, archive });
      }
      await io.fsyncDir(log.dir);
      logger.info({ ...base, policy: policy.source }, 'retention removed a segment');
    } catch (e) {
      logger.error({ ...base, err: e }, 'retention failed on a detached segment');
      report.errors.push({ segment: seg.path, error: String(e) });
    }
  }
}
