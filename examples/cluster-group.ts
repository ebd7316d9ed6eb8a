/**
 * Cluster mode: brokers and partitions come from ZooKeeper. The producer sends a new topic through the brokers'
 * `[topic=*]` section (`defaultTopic: '*'`, MetaQ's recipe), over every broker; then the two consumers of one group
 * share the topic's partitions (MetaQ's range assignment) and read every message once. Prints who owns what, exits.
 *
 *   node --import tsx examples/cluster-group.ts        (ZooKeeper from $METAQ_ZK, default 127.0.0.1:2181)
 */
import { lastValueFrom, map, merge, take } from 'rxjs';
import { createClient, partitionName } from '../sdk/index.js';

const TOPIC = `cluster-demo-${Date.now()}`;
const COUNT = 60;
const client = await createClient({ zkConnect: process.env.METAQ_ZK ?? '127.0.0.1:2181' });

const producer = client.producer({ defaultTopic: '*' });
const sent = await Promise.all(Array.from({ length: COUNT }, (_, i) => producer.send({ topic: TOPIC, value: `message ${i}` })));
const brokers = [...new Set(sent.map((r) => r.partition.brokerId))].sort();
console.log(`sent ${sent.length} messages to ${TOPIC} on brokers ${brokers.join(', ')}`);

const consumers = ['reader-a', 'reader-b'].map((consumerId) => client.consumer({ group: 'cluster-demo', consumerId }));
const values = new Set<string>();
const readFrom = consumers.map(() => new Set<string>());
await lastValueFrom(merge(...consumers.map((c, i) => c.messages$(TOPIC).pipe(map((d) => ({ d, i }))))).pipe(
  map(({ d, i }) => {
    values.add(d.message.value.toString());
    readFrom[i]!.add(partitionName(d.message.partition));
    d.ack();
  }),
  take(COUNT),
));
console.log(`read ${values.size} distinct messages of ${(await client.partitionsFor(TOPIC)).length} partitions`);
consumers.forEach((c, i) => console.log(`${c.memberId} read from ${[...readFrom[i]!].sort().join(' ') || 'none'}`));
await client.close();
