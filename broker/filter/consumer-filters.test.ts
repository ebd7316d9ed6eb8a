import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import { ConfigError } from '../../sdk/errors.js';
import { encodePayload, encodeRecord } from '../../sdk/protocol/record.js';
import { embeddedConfig } from '../config/server-config.js';
import { ConsumerFilters, ERROR_LOG_INTERVAL_MS, GroupFilter } from './consumer-filters.js';
import { FilterMessageView } from './filter-message.js';
import { resolveFilterPath } from './filter-module.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/filters/', import.meta.url));

/** A logger whose records land in `lines`. */
function capture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } });
  return { logger, lines };
}

/** A view pointed at one record with this payload and attribute. */
function message(payload: string, attribute: string | null = null, offset = 0): FilterMessageView {
  const { data, flag } = encodePayload(Buffer.from(payload), attribute);
  const rec = encodeRecord(1n, flag, data);
  const view = new FilterMessageView(rec, offset, 'orders', 0);
  view.point(0, rec.length);
  return view;
}

describe('broker/filter/consumer-filters', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'metaq-filters-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('resolves a module path against appClassPath, itself against the working directory', () => {
    assert.equal(resolveFilterPath('/abs/f.ts', 'lib', '/srv'), '/abs/f.ts');
    assert.equal(resolveFilterPath('f.ts', 'lib', '/srv'), '/srv/lib/f.ts');
    assert.equal(resolveFilterPath('f.ts', '/opt/app', '/srv'), '/opt/app/f.ts');
    assert.equal(resolveFilterPath('sub/f.ts', '', '/srv'), '/srv/sub/f.ts');
  });

  it('loads the filters of exact and wildcard sections and finds them by topic and group', async () => {
    const config = embeddedConfig({
      'system.appClassPath': FIXTURES,
      'topic=orders.group.vip': 'attribute-filter.ts',
      'topic=orders.group.even': 'commonjs-filter.cjs',
      'topic=*.group.all-vip': join(FIXTURES, 'attribute-filter.ts'),
    });
    const filters = await ConsumerFilters.load(config, capture().logger);
    assert.equal(filters.size, 3);
    const vip = filters.find('orders', 'vip');
    assert.ok(vip !== undefined);
    assert.equal(vip.test(message('x', 'vip')), true);
    assert.equal(vip.test(message('x', 'plain')), false);
    assert.equal(vip.test(message('x')), false);
    const even = filters.find('orders', 'even');
    assert.equal(even?.test(message('ab')), true, 'module.exports = { accept } works');
    assert.equal(even?.test(message('abc')), false);
    assert.equal(filters.find('orders', 'other'), undefined);
    // `orders` has its own section, so the wildcard section's filter does not apply to it.
    assert.equal(filters.find('orders', 'all-vip'), undefined);
    assert.equal(filters.find('payments', 'all-vip')?.test(message('x', 'gold')), true);
    assert.equal(filters.find('payments', 'vip'), undefined);
  });

  it('finds nothing when no section names a filter', async () => {
    const filters = await ConsumerFilters.load(embeddedConfig(), capture().logger);
    assert.equal(filters.size, 0);
    assert.equal(filters.find('orders', 'g'), undefined);
  });

  it('refuses a missing module with a ConfigError naming the section, the group and the path', async () => {
    const config = embeddedConfig({ 'system.appClassPath': FIXTURES, 'topic=orders.group.billing': 'missing-filter.ts' });
    await assert.rejects(ConsumerFilters.load(config, capture().logger), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /group 'billing' in \[topic=orders\] \(module 'missing-filter\.ts' → .*\/test\/fixtures\/filters\/missing-filter\.ts\): no such file/);
      return true;
    });
  });

  it('refuses a module without an accept function, listing what it exports', async () => {
    const config = embeddedConfig({ 'system.appClassPath': FIXTURES, 'topic=orders.group.billing': 'no-accept.ts' });
    await assert.rejects(ConsumerFilters.load(config, capture().logger),
      /group 'billing' in \[topic=orders\] .*no-accept\.ts\) does not export an accept\(group, message\) function \(it exports: allow\)/);
  });

  it('refuses a module that fails to load, with the reason', async () => {
    await writeFile(join(dir, 'broken.mjs'), 'export function accept( {');
    const config = embeddedConfig({ 'system.appClassPath': dir, 'topic=t.group.g': 'broken.mjs' });
    await assert.rejects(ConsumerFilters.load(config, capture().logger), /Cannot load the server-side filter of group 'g' in \[topic=t\].*broken\.mjs/);
  });

  it('counts a throw or a Promise as a reject and logs failures at most once per interval', () => {
    const { logger, lines } = capture();
    let now = 1_000_000;
    const origin = { section: 'orders', group: 'g', module: 'f.ts' };
    const f = new GroupFilter((_g, m) => {
      if (m.payload.toString() === 'boom') throw new Error('kaboom');
      return m.payload.toString() === 'later' ? Promise.resolve(true) : 1;
    }, origin, '/x/f.ts', logger, () => now);
    assert.equal(f.test(message('fine')), true, 'a truthy answer accepts');
    assert.equal(f.test(message('boom', null, 10)), false);
    assert.equal(f.test(message('boom')), false);
    assert.equal(f.test(message('later')), false);
    assert.equal(f.failures, 3);
    assert.equal(lines.length, 1);
    assert.match(String(lines[0]!.msg), /server-side filter of group 'g' in \[topic=orders\] .* threw: message rejected/);
    assert.equal((lines[0]!.err as { message: string }).message, 'kaboom');
    assert.equal(lines[0]!.offset, 10);
    now += ERROR_LOG_INTERVAL_MS;
    assert.equal(f.test(message('later')), false);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.alsoFailedSinceLastLog, 2);
    assert.match((lines[1]!.err as { message: string }).message, /must answer synchronously/);
  });

  it('reloads a changed module, and keeps the current filters when the new config has a bad one', async () => {
    const path = join(dir, 'reloadable.mjs');
    await writeFile(path, 'export const accept = () => true;\n');
    const config = embeddedConfig({ 'system.appClassPath': dir, 'topic=t.group.g': 'reloadable.mjs' });
    const filters = await ConsumerFilters.load(config, capture().logger);
    assert.equal(filters.find('t', 'g')?.test(message('x')), true);
    await writeFile(path, 'export const accept = () => false;\n');
    await utimes(path, new Date(), new Date(Date.now() + 5000));
    await filters.reload(config);
    assert.equal(filters.find('t', 'g')?.test(message('x')), false);
    await assert.rejects(filters.reload(embeddedConfig({ 'system.appClassPath': dir, 'topic=t.group.g': 'gone.mjs' })), ConfigError);
    assert.equal(filters.find('t', 'g')?.test(message('x')), false, 'still the last good filter');
    await filters.reload(embeddedConfig({ 'system.appClassPath': dir }));
    assert.equal(filters.find('t', 'g'), undefined);
  });
});
