import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { startMariaDb, type MariaDbServer } from './mariadb.js';
import { waitFor } from './wait-for.js';

const execFileAsync = promisify(execFile);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('harness/mariadb', () => {
  let db: MariaDbServer;
  before(async () => { db = await startMariaDb(); });
  after(async () => { await db.stop(); });

  it('serves the test user over TCP with the binlog on in ROW format with full row images', async () => {
    const conn = await createConnection({ host: db.host, port: db.port, user: db.user, password: db.password,
      database: db.database });
    try {
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT @@log_bin AS logBin, @@binlog_format AS format, @@binlog_row_image AS image, @@server_id AS id');
      assert.deepEqual({ ...rows[0] }, { logBin: 1, format: 'ROW', image: 'FULL', id: 1 });
      await conn.query('CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))');
      await conn.query('INSERT INTO t VALUES (1, ?)', ['x']);
      const [logs] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
      assert.ok(logs.length > 0, 'the server keeps binary logs');
    } finally {
      await conn.end();
    }
  });

  it('grants the test user what a binlog reader needs', async () => {
    const conn = await createConnection({ socketPath: db.socketPath, user: db.user, password: db.password });
    try {
      const [rows] = await conn.query<RowDataPacket[]>('SHOW GRANTS');
      const grants = rows.map((r) => String(Object.values(r)[0])).join('\n');
      assert.match(grants, /REPLICATION SLAVE/);
      assert.match(grants, /BINLOG MONITOR|REPLICATION CLIENT/);
      assert.match(grants, /GRANT ALL PRIVILEGES ON `metaq_test`\.\*/);
    } finally {
      await conn.end();
    }
  });

  it('stops the server by pid and removes its directory', async () => {
    const other = await startMariaDb();
    assert.ok(alive(other.pid));
    await other.stop();
    await waitFor(() => !alive(other.pid), { what: 'mariadbd to exit' });
    assert.equal(existsSync(other.dir), false);
  });
});

describe('harness/mariadb at process exit', () => {
  it('kills servers still running when the test process exits', async () => {
    const harness = new URL('./mariadb.ts', import.meta.url).href;
    const script = `const m = await import(${JSON.stringify(harness)}); const db = await m.startMariaDb();` +
      ' process.stdout.write(JSON.stringify({ pid: db.pid, dir: db.dir })); process.exit(0);';
    const { stdout } = await execFileAsync(process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() });
    const { pid, dir } = JSON.parse(stdout) as { pid: number; dir: string };
    try {
      await waitFor(() => !alive(pid), { what: `orphaned mariadbd ${pid} to die` });
      assert.equal(existsSync(dir), false);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
