import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fourLetter, startZooKeeper } from './zookeeper.js';

describe('harness/zookeeper', () => {
  it('starts a standalone server on a loopback port, pauses it, and stops it by pid', async () => {
    const zk = await startZooKeeper();
    try {
      assert.match(await zk.srvr(), /Mode: standalone/);
      zk.pause();
      await assert.rejects(fourLetter(zk.port, 'srvr', 500), /did not answer/);
      zk.resume();
      assert.match(await zk.srvr(), /Mode: standalone/);
    } finally {
      await zk.stop();
    }
    assert.throws(() => process.kill(zk.pid, 0), /ESRCH/);
    assert.equal(existsSync(zk.dir), false);
  });
});
