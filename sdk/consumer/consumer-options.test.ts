import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { consistentHashStrategy } from '../cluster/group/consistent-hash-strategy.js';
import { rangeStrategy } from '../cluster/group/range-strategy.js';
import type { ConsumerOptions } from '../config.js';
import { ConfigError } from '../errors.js';
import { resolveConsumerOptions } from './consumer-options.js';

describe('resolveConsumerOptions', () => {
  it('resolves the load balance strategy by name, range by default', () => {
    assert.equal(resolveConsumerOptions({ group: 'g' }).loadBalanceStrategy, rangeStrategy);
    assert.equal(resolveConsumerOptions({ group: 'g', loadBalanceStrategy: 'consistent-hash' }).loadBalanceStrategy, consistentHashStrategy);
  });

  it('refuses an unknown load balance strategy with a ConfigError naming the option', () => {
    const options = { group: 'g', loadBalanceStrategy: 'round-robin' } as unknown as ConsumerOptions;
    assert.throws(() => resolveConsumerOptions(options),
      (e: unknown) => e instanceof ConfigError && /loadBalanceStrategy/.test(e.message) && /round-robin/.test(e.message));
  });

  it('refuses a consumerId that is not one path segment', () => {
    assert.throws(() => resolveConsumerOptions({ group: 'g', consumerId: 'a/b' }), ConfigError);
  });
});
