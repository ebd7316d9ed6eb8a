/**
 * Durable whole-file replacement: write a temp file, fsync it, rename it over the target, fsync the directory. A
 * crash at any moment leaves the old file or the new one, never a mix or a torn file.
 */
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The steps of {@link writeFileAtomically}, for tests that crash between them. */
export type AtomicWriteStep = 'before-fsync' | 'before-rename' | 'before-dir-fsync';

/**
 * Makes a rename (or a file creation) durable: the directory entry lives in the directory's own blocks. File systems
 * that cannot fsync a directory (EINVAL, EISDIR) are tolerated: the rename itself is still atomic there.
 *
 * @example
 * ```ts
 * await rename(tmp, path);
 * await syncDirectory(dirname(path));
 * ```
 */
export async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR') throw e;
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` atomically and durably (see the file comment), creating its directory if needed. A temp
 * file `<path>.tmp` left by a crash is simply overwritten: it was never renamed, so it never counted. `step` runs
 * before each step (tests crash there).
 *
 * @example
 * ```ts
 * await writeFileAtomically('/var/lib/app/position.json', JSON.stringify(position));
 * ```
 */
export async function writeFileAtomically(path: string, data: string | Buffer,
  step?: (at: AtomicWriteStep) => void): Promise<void> {
  const tmp = `${path}.tmp`;
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    step?.('before-fsync');
    await fh.sync();
  } finally {
    await fh.close();
  }
  step?.('before-rename');
  await rename(tmp, path);
  step?.('before-dir-fsync');
  await syncDirectory(dirname(path));
}
