import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerStats } from './broker-stats.js';

describe('BrokerStats', () => {
  it('counts realtime puts and gets from the last reset while the cumulative counts go on', () => {
    let now = 1_000_000;
    const stats = new BrokerStats(() => now);
    stats.recordPut('orders', 10);
    stats.recordPut('orders', 5);
    stats.recordGet('orders', true);
    stats.recordFetch('orders', 30, 2);
    assert.deepEqual(stats.topicRealtime('orders'), { puts: 2, putBytes: 15, gets: 2, getMisses: 1 });

    now += 4000;
    stats.resetRealtime();
    assert.deepEqual(stats.topicRealtime('orders'), { puts: 0, putBytes: 0, gets: 0, getMisses: 0 });
    assert.deepEqual(stats.realtimeLines(), [`realtime_since ${new Date(now).toISOString()}`], 'idle topics are left out');

    stats.recordPut('orders', 7);
    stats.recordGet('orders', true);
    now += 2000;
    assert.deepEqual(stats.topicRealtime('orders'), { puts: 1, putBytes: 7, gets: 1, getMisses: 1 });
    assert.deepEqual(stats.realtimeLines().slice(1),
      ['orders put_count 1 put_bytes 7 put_tps 0.5 get_count 1 get_miss 1 get_tps 0.5']);
    assert.deepEqual(stats.totals(), { messagesIn: 3, bytesIn: 22, messagesOut: 2, bytesOut: 30, gets: 3, getMisses: 2 });
    assert.equal(stats.getMiss, 2);
  });

  it('answers zero realtime counts for a topic never seen', () => {
    const stats = new BrokerStats();
    assert.deepEqual(stats.topicRealtime('nothing'), { puts: 0, putBytes: 0, gets: 0, getMisses: 0 });
    assert.equal(stats.topicCounters().size, 0);
  });
});
