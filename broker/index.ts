/**
 * The metaq broker: a MetaQ 1.4 protocol server over per-partition append-only segment logs.
 * See broker/README.md for what an acknowledgement guarantees.
 */
export { startBroker, BROKER_VERSION } from './broker.js';
export type { Broker, StartBrokerOptions } from './broker.js';
export type { BrokerConfig, SystemConfig, TopicConfig, ZookeeperConfig, DeletePolicy } from './config/broker-config.js';
export type { FilterMessage, AcceptFunction } from './filter/filter-message.js';
