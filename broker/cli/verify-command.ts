/**
 * `metaq verify <dataDir>`: the offline store checker (as `bbolt check`). It only reads; it reports every
 * problem and exits 1 if there is any, so it can run after tests and before restoring a backup.
 */
import { stat } from 'node:fs/promises';
import { relative } from 'node:path';
import { InvalidArgumentError } from '../../sdk/errors.js';
import { verifyDataDir, type VerifyProblem } from '../store/verify.js';
import { ProgressBar } from './progress.js';

export interface VerifyFlags {
  readonly json?: boolean;
  readonly maxMessageSize?: string;
}

export async function verifyCommand(dataDir: string, flags: VerifyFlags): Promise<number> {
  const info = await stat(dataDir).catch(() => undefined);
  if (info === undefined || !info.isDirectory()) throw new InvalidArgumentError(`${dataDir} is not a directory`);
  let maxMessageSize: number | undefined;
  if (flags.maxMessageSize !== undefined) {
    maxMessageSize = Number(flags.maxMessageSize);
    if (!Number.isSafeInteger(maxMessageSize) || maxMessageSize <= 0) {
      throw new InvalidArgumentError(`--max-message-size ${flags.maxMessageSize}: expected a positive integer`);
    }
  }
  const bar = new ProgressBar({ label: 'verify partitions' });
  const report = await verifyDataDir(dataDir, {
    ...(maxMessageSize === undefined ? {} : { maxMessageSize }),
    onProgress: (done, total, what) => bar.update(done, total, what),
  });
  bar.finish();
  if (flags.json === true) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    process.stdout.write(`verified ${dataDir}: ${report.partitions} partitions, ${report.segments} segments, ` +
      `${report.records} records, ${report.bytes} bytes\n`);
    for (const p of report.problems) process.stdout.write(`PROBLEM ${describeProblem(dataDir, p)}\n`);
    process.stdout.write(report.problems.length === 0 ? 'OK: no problems found\n' : `FAILED: ${report.problems.length} problem(s)\n`);
  }
  return report.problems.length === 0 ? 0 : 1;
}

/** `orders-0/00000000000000000000.meta position 40 (offset 40): checksum mismatch` */
function describeProblem(dataDir: string, p: VerifyProblem): string {
  const partition = relative(dataDir, p.partitionDir) || p.partitionDir;
  const where = p.segmentFile === '' ? partition : `${partition}/${p.segmentFile}`;
  const position = p.position < 0 ? '' : ` position ${p.position}`;
  const offset = p.offset < 0 ? '' : ` (offset ${p.offset})`;
  return `${where}${position}${offset}: ${p.reason}`;
}
