/**
 * The message an event becomes: one JSON object per message (format version 1, documented in README.md).
 *
 * ```json
 * {"v":1,"timestamp":"2024-05-01T12:00:00.123Z","level":"INFO","category":"orders","host":"web-1","pid":4242,
 *  "seq":17,"message":"order 7 paid","context":{"user":"u-9"}}
 * ```
 */
import type { LoggingEvent } from 'log4js';

/** The version in the `v` field; bumped on any change a reader could notice. */
export const MESSAGE_FORMAT_VERSION = 1;

/** The fields of a message as a reader parses them. */
export interface LogMessage {
  readonly v: typeof MESSAGE_FORMAT_VERSION;
  /** When the event was logged, ISO 8601 in UTC with milliseconds. */
  readonly timestamp: string;
  /** log4js level name: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, MARK (or a custom level). */
  readonly level: string;
  readonly category: string;
  readonly host: string;
  /** The pid of the process that logged (a cluster worker's own pid when log4js forwards its events). */
  readonly pid: number;
  /** Per appender instance, from 1, one per event received, so a gap shows events dropped on a full buffer. */
  readonly seq: number;
  /** The event formatted by the appender's layout. */
  readonly message: string;
  /** log4js context (`logger.addContext`), when not empty. */
  readonly context?: Record<string, unknown>;
}

/**
 * Encodes one event; `hostJson` is the host name already JSON-quoted. Strings are escaped with JSON.stringify one
 * by one instead of building and stringifying an object: fewer allocations per event on the application's thread.
 */
export function formatMessage(event: LoggingEvent, message: string, hostJson: string, seq: number): string {
  const time = event.startTime instanceof Date && !Number.isNaN(event.startTime.getTime()) ? event.startTime : new Date();
  let out = `{"v":${MESSAGE_FORMAT_VERSION},"timestamp":"${time.toISOString()}",` +
    `"level":${JSON.stringify(event.level.levelStr)},"category":${JSON.stringify(event.categoryName)},` +
    `"host":${hostJson},"pid":${Number(event.pid) || process.pid},"seq":${seq},"message":${JSON.stringify(message)}`;
  const context = contextJson(event.context);
  if (context !== undefined) out += `,"context":${context}`;
  return out + '}';
}

/** The context as JSON, or undefined when empty or not serializable (a circular value must not lose the event). */
function contextJson(context: unknown): string | undefined {
  if (context === null || typeof context !== 'object') return undefined;
  for (const _ in context) {
    try {
      return JSON.stringify(context);
    } catch {
      return undefined;
    }
  }
  return undefined;
}
