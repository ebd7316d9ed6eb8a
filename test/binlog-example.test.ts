/**
 * examples/binlog-replica.ts runs as a user would run it: against a broker and two real MariaDB servers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startMariaDb, type MariaDbServer } from './harness/mariadb.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('examples/binlog-replica.ts', () => {
  let source: MariaDbServer;
  let target: MariaDbServer;
  let broker: TestBroker;

  before(async () => {
    [source, target, broker] = await Promise.all([startMariaDb({ extraArgs: ['--binlog-row-metadata=FULL'] }), startMariaDb(),
      startTestBroker({ 'system.numPartitions': '3' })]);
  });
  after(async () => {
    await Promise.all([source?.stop(), target?.stop(), broker?.dispose()]);
  });

  it('copies inserts, an update, a delete and an ADD COLUMN to the replica', { timeout: 60_000 }, async () => {
    const url = (db: MariaDbServer): string => `mysql://${db.user}:${db.password}@${db.host}:${db.port}/${db.database}`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', 'binlog-replica.ts')], {
      cwd: ROOT, timeout: 50_000,
      env: { ...process.env, METAQ_URL: `meta://127.0.0.1:${broker.port}`, SOURCE_URL: url(source), TARGET_URL: url(target) },
    });
    assert.match(stdout, /replica of items_\d+: \[\{"id":1,"name":"pen","price":"1.75","stock":0\},\{"id":2,"name":"ink","price":"7.25","stock":12\}\]/);
    assert.match(stdout, /published 9 messages, applied 6 rows and 1 DDL/);
  });
});
