/**
 * The disk-usage watermark: writes are refused (DiskFullError, retriable) while the filesystem holding a data
 * path is fuller than `diskMaxUsedRatio`, and resume by themselves once a later check finds space. Reads keep
 * working. An ENOSPC from a write also marks the path full until the next check.
 */
import type { Logger } from 'pino';
import type { FileIO } from './file-io.js';
import type { Failpoints } from './failpoints.js';
import { FailpointNames } from './failpoints.js';

/** Shared by every partition under one data path; appends read `full` only. */
export class DiskState {
  full = false;
  usedRatio = 0;
  constructor(readonly path: string) {}
}

export class DiskWatermark {
  private readonly states = new Map<string, DiskState>();
  private checking: Promise<void> | null = null;

  constructor(private readonly io: FileIO, private readonly maxUsedRatio: number, private readonly logger: Logger,
    private readonly failpoints?: Failpoints) {}

  /** The state object of a data path (created on first use). */
  stateFor(path: string): DiskState {
    let s = this.states.get(path);
    if (s === undefined) { s = new DiskState(path); this.states.set(path, s); }
    return s;
  }

  /** Checks every data path with statfs; concurrent calls share one check. */
  check(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => { this.checking = null; });
    return this.checking;
  }

  private async checkAll(): Promise<void> {
    for (const s of this.states.values()) {
      let full: boolean;
      try {
        if (this.failpoints?.active === true) await this.failpoints.hit(FailpointNames.DISK_FULL, s.path);
        const space = await this.io.statfs(s.path);
        s.usedRatio = space.totalBytes > 0 ? 1 - space.availableBytes / space.totalBytes : 0;
        full = s.usedRatio > this.maxUsedRatio;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') {
          this.logger.warn({ path: s.path, err: e }, 'disk watermark check failed; keeping the previous state');
          continue;
        }
        full = true;
      }
      if (full !== s.full) {
        this.logger[full ? 'warn' : 'info']({ path: s.path, usedRatio: s.usedRatio, maxUsedRatio: this.maxUsedRatio },
          full ? 'disk above the watermark: refusing writes' : 'disk below the watermark again: accepting writes');
      }
      s.full = full;
    }
  }
}
