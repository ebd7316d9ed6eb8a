import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { formatTransactionKey, parseTransactionKey, transactionKeyProblem } from './transaction-key.js';

describe('protocol/transaction-key', () => {
  it('parses and formats a local key', () => {
    const k = parseTransactionKey('TX:host-1700000000000-1:99');
    assert.deepEqual(k, { kind: 'local', sessionId: 'host-1700000000000-1', counter: 99 });
    assert.equal(formatTransactionKey(k), 'TX:host-1700000000000-1:99');
  });

  it('parses and formats an XA key with lowercase hex', () => {
    const k = parseTransactionKey('XID:1:0A0b:ff:node-1');
    assert.deepEqual(k, {
      kind: 'xa', formatId: 1, globalTransactionId: Buffer.from([0x0a, 0x0b]), branchQualifier: Buffer.from([0xff]),
      uniqueQualifier: 'node-1',
    });
    assert.equal(formatTransactionKey(k), 'XID:1:0a0b:ff:node-1');
  });

  it('reads "null" as no transaction and writes null back as "null"', () => {
    assert.equal(parseTransactionKey('null'), null);
    assert.equal(formatTransactionKey(null), 'null');
  });

  const bad: [string, RegExp][] = [
    ['TX:a', /3 ':'-separated parts, found 2/],
    ['TX:a:1:2', /found 4/],
    ['TX::1', /session id is empty/],
    ['TX:a:x', /counter "x" is not an int32/],
    ['TX:a:2147483648', /not an int32/],
    ['XID:1:aa:bb', /5 ':'-separated parts, found 4/],
    ['XID:1:abc:bb:q', /global transaction id "abc" is not an even-length hex string/],
    ['XID:1:aa:zz:q', /branch qualifier/],
    ['XID:x:aa:bb:q', /formatId "x"/],
    ['XID:1:aa:bb:', /unique qualifier is empty/],
    ['tx:a:1', /starts with neither/],
    ['TX:a b:1', /whitespace/],
  ];
  for (const [key, why] of bad) {
    it(`refuses ${JSON.stringify(key)} saying why`, () => {
      assert.throws(() => parseTransactionKey(key), (e: unknown) => e instanceof InvalidArgumentError && why.test(e.message));
      assert.match(transactionKeyProblem(key)!, why);
    });
  }

  it('refuses to format a key that could not be parsed back', () => {
    assert.throws(() => formatTransactionKey({ kind: 'local', sessionId: 'fe80::1', counter: 1 }), /contains ':'/);
    assert.throws(() => formatTransactionKey({ kind: 'local', sessionId: 's', counter: 1.5 }), /not an int32/);
  });
});
