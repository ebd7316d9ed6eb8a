#!/usr/bin/env node
// Node 20's test runner neither expands globs nor finds .ts files: list every *.test.ts here.
// Unit tests sit beside the code (sdk/, broker/, ...); process-level tests live in test/.
// Soak runs (test/soak/) are not part of `npm test`.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const roots = ['sdk', 'broker', 'connectors', 'spout', 'examples', 'test', 'bench'];
const skipDirs = new Set(['node_modules', 'soak', 'fixtures', 'artifacts']);

function walk(dir, out) {
  let names;
  try { names = readdirSync(dir); } catch { return out; }
  for (const name of names.sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (!skipDirs.has(name)) walk(p, out); }
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : roots.flatMap((r) => walk(join(root, r), []));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2',
  // A test that hangs fails after 5 minutes instead of holding CI to its limit.
  '--test-timeout=300000', ...files],
  { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
