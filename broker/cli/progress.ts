/**
 * A one-line progress bar (done/total, rate, ETA) for long work: `metaq verify`, recovery at start.
 * It draws only when its stream is a TTY, so logs and pipes never receive control characters.
 *
 * @example
 * ```ts
 * const bar = new ProgressBar({ label: 'verify', unit: 'bytes' });
 * await verifyDataDir(dir, { onProgress: (done, total, what) => bar.update(done, total, what) });
 * bar.finish();
 * ```
 */

export interface ProgressBarOptions {
  readonly label: string;
  /** How to print done/total and the rate. Default 'items'. */
  readonly unit?: 'bytes' | 'items';
  /** Default process.stderr. */
  readonly stream?: NodeJS.WriteStream;
  /** Minimum milliseconds between redraws. Default 100. */
  readonly intervalMs?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

const WIDTH = 24;

export class ProgressBar {
  readonly enabled: boolean;
  private readonly stream: NodeJS.WriteStream;
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw = -Infinity;
  private drawn = false;

  constructor(private readonly options: ProgressBarOptions) {
    this.stream = options.stream ?? process.stderr;
    this.enabled = this.stream.isTTY === true;
    this.now = options.now ?? Date.now;
    this.started = this.now();
  }

  /** Records progress; redraws at most every `intervalMs`, and always on completion. */
  update(done: number, total: number, what = ''): void {
    if (!this.enabled) return;
    const t = this.now();
    if (t - this.lastDraw < (this.options.intervalMs ?? 100) && done < total) return;
    this.lastDraw = t;
    const columns = this.stream.columns ?? 80;
    const line = this.render(done, total, what, t);
    this.stream.write(`\r${line.length > columns - 1 ? line.slice(0, columns - 1) : line}\x1b[K`);
    this.drawn = true;
  }

  /** Ends the line so that later output starts on a fresh one. */
  finish(): void {
    if (this.enabled && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  /** The bar's text (no control characters); exposed for tests. */
  render(done: number, total: number, what: string, at: number): string {
    const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
    const filled = Math.round(ratio * WIDTH);
    const elapsed = Math.max(0.001, (at - this.started) / 1000);
    const rate = done / elapsed;
    const eta = rate > 0 && total > done ? (total - done) / rate : 0;
    const fmt = this.options.unit === 'bytes' ? formatBytes : formatCount;
    return `${this.options.label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ` +
      `${(ratio * 100).toFixed(1).padStart(5)}% ${fmt(done)}/${fmt(total)} ${fmt(rate)}/s ` +
      `ETA ${formatDuration(eta)}${what === '' ? '' : ` ${what}`}`;
  }
}

/** `1.5 MiB`-style sizes. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** `12.3k`-style counts. */
export function formatCount(n: number): string {
  if (n < 1000) return String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e9).toFixed(1)}G`;
}

/** `1h02m`, `3m05s`, `42s`. */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
