import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Observable, type Subscription } from 'rxjs';
import type { ClientContext } from '../sdk/client/client-context.js';
import { DirectRouter } from '../sdk/cluster/direct-router.js';
import { resolveConsumerOptions } from '../sdk/consumer/consumer-options.js';
import { TopicSubscription } from '../sdk/consumer/topic-subscription.js';
import type { Delivery, Message } from '../sdk/message.js';
import { BrokerLink } from '../sdk/network/broker-link.js';
import type { CommittedOffset, OffsetStore } from '../sdk/offsets/offset-store.js';
import { RawClient } from './harness/raw-client.js';
import { startTestBroker, type TestBroker } from './harness/test-broker.js';
import { tempDir, uniqueName } from './harness/temp-dir.js';
import { waitFor } from './harness/wait-for.js';

class MemoryStore implements OffsetStore {
  readonly map = new Map<string, CommittedOffset>();
  async load(group: string, topic: string, p: { brokerId: number; partition: number }) {
    return this.map.get(`${group}/${topic}/${p.partition}`);
  }
  async commit(group: string, offsets: readonly CommittedOffset[]) {
    for (const o of offsets) this.map.set(`${group}/${o.topic}/${o.partition.partition}`, o);
  }
  async close() {}
}

const part = (partition: number) => ({ brokerId: 0, partition });

describe('sdk/consumer/topic-subscription: partitions assigned and revoked at runtime', () => {
  let tb: TestBroker;
  let link: BrokerLink;
  let ctx: ClientContext;
  let dir: { path: string; remove(): Promise<void> };
  before(async () => {
    tb = await startTestBroker({ 'system.longPollTimeoutMs': '200' });
    dir = await tempDir('metaq-assign-');
    link = new BrokerLink({ host: '127.0.0.1', port: tb.port });
    await link.whenConnected();
    ctx = {
      router: await DirectRouter.start(link), logger: pino({ level: 'silent' }),
      options: { requestTimeoutMs: 10_000, recoverDir: dir.path, offsetsFile: `${dir.path}/offsets.json` },
      closing: false, own: () => () => undefined,
    };
  });
  after(async () => {
    await link.close();
    await tb.dispose();
    await dir.remove();
  });

  async function put(topic: string, partition: number, text: string): Promise<void> {
    const raw = await RawClient.connect(tb.port);
    assert.equal((await raw.put(topic, partition, text)).code, 200);
    await raw.close();
  }

  it('reads only assigned partitions, commits a revoked one before it resolves, and takes new ones', async () => {
    const topic = uniqueName('assign');
    for (const p of [0, 1, 2]) await put(topic, p, `first-${p}`);
    const store = new MemoryStore();
    const group = uniqueName('g');
    const options = resolveConsumerOptions<Buffer>({ group, maxFetchDelayMs: 50 });
    let sub: TopicSubscription<Buffer> | undefined;
    const seen: Message[] = [];
    const source = new Observable<Delivery<Buffer>>((subscriber) => {
      const s = new TopicSubscription<Buffer>({
        ctx, options, offsetStore: store, processed: undefined, ready: Promise.resolve(),
        // The recover store plays no part here: nothing is nacked.
        makeRecoverStore: () => ({ store: async () => undefined, start: () => undefined, close: async () => undefined }),
      }, topic, subscriber);
      sub = s;
      return () => { void s.close(); };
    });
    const rx: Subscription = source.subscribe((d) => {
      seen.push(d.message);
      d.ack();
    });
    await sub!.assign([part(0), part(1)]);
    await waitFor(() => seen.length === 2, { what: 'the messages of partitions 0 and 1' });
    assert.deepEqual(seen.map((m) => m.payload.toString()).sort(), ['first-0', 'first-1']);

    await sub!.revoke([part(0)]);
    assert.equal(store.map.get(`${group}/${topic}/0`)?.offset, seen.find((m) => m.partition.partition === 0)!.nextOffset,
      'the revoked partition was committed before revoke resolved');
    assert.deepEqual(sub!.assigned.map((p) => p.partition), [1]);

    await put(topic, 0, 'second-0');
    await sub!.assign([part(2)]);
    await put(topic, 1, 'second-1');
    await waitFor(() => seen.length === 4, { what: 'partition 2 and the new message of partition 1' });
    assert.deepEqual(seen.slice(2).map((m) => m.payload.toString()).sort(), ['first-2', 'second-1']);

    // Assigned back, partition 0 resumes after its committed offset: only the message that came meanwhile.
    await sub!.assign([part(0)]);
    await waitFor(() => seen.length === 5, { what: 'the new message of partition 0' });
    assert.equal(seen[4]!.payload.toString(), 'second-0');
    rx.unsubscribe();
    await sub!.close();
  });

  it('revokes a partition with nothing to commit without waiting behind a stuck commit of another', async () => {
    const topic = uniqueName('revoke-clean');
    await put(topic, 0, 'only-0');
    const group = uniqueName('g');
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let commits = 0;
    const store = new MemoryStore();
    // Partition 1 was committed before (at its empty end): read from there, it has nothing new to commit.
    store.map.set(`${group}/${topic}/1`, { topic, partition: part(1), offset: 0, msgId: -1n });
    // Every commit hangs until the gate opens (a store that stopped answering).
    store.commit = async () => {
      commits++;
      await gate;
    };
    const options = resolveConsumerOptions<Buffer>({ group, maxFetchDelayMs: 50 });
    let sub: TopicSubscription<Buffer> | undefined;
    const seen: Message[] = [];
    const source = new Observable<Delivery<Buffer>>((subscriber) => {
      const s = new TopicSubscription<Buffer>({
        ctx, options, offsetStore: store, processed: undefined, ready: Promise.resolve(), assignAll: false,
        makeRecoverStore: () => ({ store: async () => undefined, start: () => undefined, close: async () => undefined }),
      }, topic, subscriber);
      sub = s;
      return () => { void s.close(); };
    });
    const rx = source.subscribe((d) => {
      seen.push(d.message);
      d.ack();
    });
    try {
      sub!.start();
      await sub!.assign([part(0), part(1)]);
      await waitFor(() => seen.length === 1, { what: 'the message of partition 0' });
      const stuck = sub!.commit();  // partition 0 moved: its commit hangs
      await waitFor(() => commits === 1, { what: 'the stuck commit' });
      let revoked = false;
      const revoke = sub!.revoke([part(1)]).then(() => { revoked = true; });
      await waitFor(() => revoked, { timeoutMs: 2000, what: 'the revoke of the clean partition 1' });
      assert.equal(commits, 1, 'nothing was committed for partition 1');
      release();
      await Promise.all([stuck, revoke]);
    } finally {
      release();
      rx.unsubscribe();
      await sub!.close();
    }
  });
});
