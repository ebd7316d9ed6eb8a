/**
 * Named failpoints at the store's dangerous boundaries. They are no-ops unless a test enables them; the cost in
 * production is one property read (`active`) per flush cycle.
 *
 * @example
 * ```ts
 * const fp = new Failpoints();
 * fp.enable(FailpointNames.BEFORE_FSYNC, { errno: 'EIO' });            // the next fsyncs fail
 * fp.enable(FailpointNames.AFTER_FSYNC_BEFORE_ACK, { hook: () => crash() });
 * ```
 */
import { constants } from 'node:os';

export const FailpointNames = {
  /** Before the writev of a flush cycle. */
  BEFORE_WRITE: 'store.beforeWrite',
  /** Before the fdatasync of a flush cycle. */
  BEFORE_FSYNC: 'store.beforeFsync',
  /** After the fdatasync, before the callbacks are answered. */
  AFTER_FSYNC_BEFORE_ACK: 'store.afterFsyncBeforeAck',
  /** Before the rename that publishes a checkpoint or marker file. */
  BEFORE_RENAME: 'store.beforeRename',
  /** Before a write and at each disk-watermark check: when it fires, the disk counts as full. */
  DISK_FULL: 'store.diskFull',
} as const;
export type FailpointName = (typeof FailpointNames)[keyof typeof FailpointNames];

/** What an enabled failpoint does: throw an errno error, or call a hook (which may throw or wait). */
export type FailpointAction =
  | { readonly errno: string; readonly times?: number }
  | { readonly hook: (name: FailpointName, context: string) => void | Promise<void>; readonly times?: number };

interface Armed { action: FailpointAction; left: number }

export class Failpoints {
  private readonly armed = new Map<FailpointName, Armed>();
  /** Number of times each failpoint fired. */
  readonly fired = new Map<FailpointName, number>();

  get active(): boolean {
    return this.armed.size > 0;
  }

  /** Arms `name`; `times` (default unlimited) bounds how often it fires. */
  enable(name: FailpointName, action: FailpointAction): void {
    this.armed.set(name, { action, left: action.times ?? Infinity });
  }

  disable(name: FailpointName): void {
    this.armed.delete(name);
  }

  /** Fires `name` if armed. `context` says where (e.g. the partition) for hooks and error messages. */
  async hit(name: FailpointName, context = ''): Promise<void> {
    const a = this.armed.get(name);
    if (a === undefined) return;
    if (--a.left <= 0) this.armed.delete(name);
    this.fired.set(name, (this.fired.get(name) ?? 0) + 1);
    if ('errno' in a.action) throw errnoError(a.action.errno, `failpoint ${name} ${context}`);
    await a.action.hook(name, context);
  }
}

/** An Error shaped like the ones node:fs throws, with `code` and `errno`. */
export function errnoError(code: string, what: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: ${what}`);
  e.code = code;
  const n = (constants.errno as Record<string, number | undefined>)[code];
  if (n !== undefined) e.errno = -n;
  return e;
}
