import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  brokerRole, consumerIdString, decodeTopicRegistration, decodeZkOffset, encodeTopicRegistration, encodeZkOffset,
  parseBrokerRole, parseSlaveNode, sortAsStrings, ZkPaths,
} from './zk-layout.js';

test('paths follow MetaQ 1.4 under a normalised root', () => {
  for (const root of ['/meta', 'meta', '/meta/', 'meta//']) assert.equal(new ZkPaths(root).root, '/meta');
  const p = new ZkPaths('/meta');
  assert.equal(p.brokerIdDir(3), '/meta/brokers/ids/3');
  assert.equal(p.brokerMaster(3), '/meta/brokers/ids/3/master');
  assert.equal(p.brokerSlave(3, 1), '/meta/brokers/ids/3/slave1');
  assert.equal(p.brokerConfigChecksum(3), '/meta/brokers/ids/3/master_config_checksum');
  assert.equal(p.topicBroker('topics-pub', 'orders', 3), '/meta/brokers/topics-pub/orders/3-m');
  assert.equal(p.topicBroker('topics-sub', 'orders', 3, 2), '/meta/brokers/topics-sub/orders/3-s2');
  assert.equal(p.topicBroker('topics', 'orders', 0), '/meta/brokers/topics/orders/0-m');
  assert.equal(p.consumerId('billing', 'billing_c1'), '/meta/consumers/billing/ids/billing_c1');
  assert.equal(p.owner('billing', 'orders', '0-3'), '/meta/consumers/billing/owners/orders/0-3');
  assert.equal(p.offset('billing', 'orders', '0-3'), '/meta/consumers/billing/offsets/orders/0-3');
  assert.equal(new ZkPaths('/').brokerIds, '/brokers/ids');
});

test('broker roles read back what they write and refuse anything else', () => {
  assert.equal(brokerRole(3), '3-m');
  assert.equal(brokerRole(3, 1), '3-s1');
  assert.deepEqual(parseBrokerRole('3-m'), { brokerId: 3, slaveId: undefined });
  assert.deepEqual(parseBrokerRole('12-s4'), { brokerId: 12, slaveId: 4 });
  for (const bad of ['3', '3-x', 'm-3', '3-s', '-1-m', '3-m ']) assert.equal(parseBrokerRole(bad), undefined, bad);
});

test('slave nodes under a broker id read back their slave id; other children are not slaves', () => {
  assert.equal(parseSlaveNode(new ZkPaths('/meta').brokerSlave(0, 2).split('/').pop()!), 2);
  for (const other of ['master', 'master_config_checksum', 'slave', 'slave-1', 'slave1x']) {
    assert.equal(parseSlaveNode(other), undefined, other);
  }
});

test('topic registrations are MetaQ JSON; the old bare count is read too', () => {
  assert.equal(encodeTopicRegistration(4, 0), '{"numParts":4,"broker":"0-m"}');
  assert.equal(encodeTopicRegistration(2, 1, 3), '{"numParts":2,"broker":"1-s3"}');
  assert.deepEqual(decodeTopicRegistration(Buffer.from('{"broker":"0-m","numParts":4}')), { numParts: 4, broker: '0-m' });
  assert.deepEqual(decodeTopicRegistration('8'), { numParts: 8, broker: undefined });
  for (const bad of ['', '{}', '{"numParts":-1}', '{"numParts":1.5}', 'x', 'null']) {
    assert.throws(() => decodeTopicRegistration(bad), /malformed topic registration/, bad);
  }
});

test('offsets are "<msgId>-<offset>" split at the last dash; a bare offset is an old client', () => {
  assert.equal(encodeZkOffset(-1n, 4096), '-1-4096');
  assert.equal(encodeZkOffset(7340032123456n, 0), '7340032123456-0');
  assert.deepEqual(decodeZkOffset('-1-4096'), { msgId: -1n, offset: 4096 });
  assert.deepEqual(decodeZkOffset(Buffer.from('7340032123456-12')), { msgId: 7340032123456n, offset: 12 });
  assert.deepEqual(decodeZkOffset('4096'), { msgId: -1n, offset: 4096 });
  for (const bad of ['', '-', '1-', 'a-1', '1-a', '1--2', '99999999999999999999']) {
    assert.throws(() => decodeZkOffset(bad), /malformed committed offset/, bad);
  }
});

test('consumer ids and the string order MetaQ rebalances by', () => {
  assert.equal(consumerIdString('billing', '10.0.0.7-42-u'), 'billing_10.0.0.7-42-u');
  assert.deepEqual(sortAsStrings(['0-2', '0-10', '1-0', '0-1']), ['0-1', '0-10', '0-2', '1-0']);
});
