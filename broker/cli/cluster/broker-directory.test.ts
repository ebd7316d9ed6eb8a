import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../../sdk/errors.js';
import { BrokerDirectory } from './broker-directory.js';

describe('cli/cluster/broker-directory', () => {
  it('rejects (never throws) with InvalidArgumentError for a registered URL that is not meta://host:port', async () => {
    const dir = new BrokerDirectory(1000);
    try {
      const answer = dir.version('http://10.0.0.1:8123');
      assert.ok(answer instanceof Promise);
      await assert.rejects(answer, (e: unknown) => e instanceof InvalidArgumentError && /invalid broker URL/.test(e.message));
      await assert.rejects(dir.offsets('meta://nohost'), InvalidArgumentError);
    } finally {
      dir.close();
    }
  });
});
