/**
 * Small helpers for commands that wait on other processes: polling with a deadline, reading a log's tail.
 */
import { open } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  readonly timeoutMs: number;
  /** Default 50. */
  readonly intervalMs?: number;
}

/** Polls `predicate` until it holds (true) or the deadline passes (false). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, options: WaitOptions): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() >= deadline) return false;
    await delay(options.intervalMs ?? 50);
  }
}

/** The last `lines` lines of a text file (reading at most its last 64 KiB), or a note when unreadable. */
export async function tailFile(path: string, lines: number): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const length = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(length);
      await fh.read(buf, 0, length, size - length);
      return buf.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } finally {
      await fh.close();
    }
  } catch (e) {
    return `(cannot read ${path}: ${(e as Error).message})`;
  }
}
