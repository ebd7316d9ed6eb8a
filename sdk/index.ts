/**
 * metaq's client: connect with {@link createClient}, then make producers and consumers from the client.
 *
 * @example
 * ```ts
 * import { createClient } from 'metaq';
 * const client = await createClient({ serverUrl: 'meta://127.0.0.1:8123' }); // or { zkConnect: '127.0.0.1:2181' }
 * await client.producer().send({ topic: 'orders', value: 'hello' });
 * client.consumer({ group: 'billing' }).subscribe('orders', (m) => console.log(m.value.toString()));
 * ```
 */
export { createClient, MetaqClient } from './client/client.js';
export {
  CLIENT_DEFAULTS, CONSUMER_DEFAULTS, PRODUCER_DEFAULTS,
  type AsyncProducerOptions, type ClientOptions, type ConsumerOptions, type PartitionSelectorOption, type ProducerOptions,
  type ReconnectOptions,
} from './config.js';
export {
  parsePartitionName, partitionName, type Delivery, type Message, type Partition, type ProducerRecord, type SendResult,
} from './message.js';
export {
  BrokerError, ChecksumMismatchError, ConfigError, ConnectionError, CoordinationError, CorruptRecordError, DiskFullError,
  ErrorCodes, FencedError, FsyncFailedError, InvalidArgumentError, MessageTooLargeError, MetaqError, OffsetOutOfRangeError, PartitionClosedError,
  ProtocolError, ShuttingDownError, StorageError, TimeoutError, TransactionError, UnknownTopicError, UnsupportedCompressionError,
  WrongPartitionError, type ErrorCode,
} from './errors.js';
export {
  COMPRESSION_FLAG_MASK, COMPRESSION_FLAG_SHIFT, CompressionCodecs, CompressionTypes, compressionOfFlag,
  type Codec, type CodecFactory, type CompressionType, type EncoderLike,
} from './codec/compression.js';
export {
  Deserializers, Serializers, type DeserializeContext, type Deserializer, type Serializer,
} from './codec/serializers.js';
export { murmur2, toPositive } from './codec/murmur2.js';
export { Producer } from './producer/producer.js';
export { sendAll, type SendAllOptions } from './producer/send-all.js';
export { Transaction, type TransactionOptions, type TransactionState } from './producer/transaction.js';
export { XaCodes } from './producer/transaction-commands.js';
export { XaResource, type XaResourceOptions, type Xid } from './producer/xa-resource.js';
export { AsyncProducer, type AsyncProducerStats } from './producer/async-producer.js';
export { Consumer, type ConsumerStatus, type ListenerSubscription } from './consumer/consumer.js';
export { manualAck, type PartitionTransaction } from './consumer/manual-ack.js';
export { BROWSER_GROUP, type FetchOnceOptions, type FetchOnceResult } from './consumer/fetch-once.js';
export type { BrowseOptions } from './consumer/topic-browser.js';
export type { CommittedOffset, OffsetStore } from './offsets/offset-store.js';
export { LocalFileOffsetStore } from './offsets/local-file-offset-store.js';
export { DEFAULT_OFFSET_TABLE, MysqlOffsetStore, offsetTableDdl, type MysqlOffsetStoreOptions } from './offsets/mysql-offset-store.js';
export { formatBrokerUrl, parseBrokerUrl, type BrokerAddress } from './protocol/broker-url.js';
export { ZkSession, type ZkCredentials, type ZkNode, type ZkSessionEvent, type ZkSessionOptions, type ZkStat, type ZkWatch } from './protocol/zk/zk-session.js';
export { ZkPaths } from './protocol/zk/zk-layout.js';
export { syncDirectory, writeFileAtomically, type AtomicWriteStep } from './storage/atomic-file.js';
