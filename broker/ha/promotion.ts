/**
 * Failover: a running slave becomes its brokerId's master, in process (MetaQ restarted the slave as a master with
 * `recoverOffset=true`; the steps are the same):
 *
 * 1. refused while the slave is not promotable (its recovery cut data and it has not caught up since);
 * 2. replication stops (no more pulls, `sync` pushes refused);
 * 3. consumer offsets committed against the old master are repaired by message id: an offset whose message is not
 *    the local one there (the old master's unreplicated tail) moves to the end of the largest local id ≤ it;
 * 4. the registration becomes the master's (the old master's ephemeral nodes are removed if its session lingers);
 * 5. puts are accepted; with `syncReplication` they wait for a new slave (the old master rejoining as one).
 *
 * Only promote a slave whose master is dead: a live old master keeps the producers that still route to it, though
 * in sync replication it can acknowledge nothing (its slave, now master, refuses its pushes).
 */
import type { Logger } from 'pino';
import { ErrorCodes, MetaqError } from '../../sdk/errors.js';
import { ZkPaths } from '../../sdk/protocol/zk/zk-layout.js';
import type { BrokerRegistry } from '../cluster/broker-registry.js';
import type { BrokerContext } from '../server/broker-context.js';
import { repairConsumerOffsets } from './offset-repair.js';
import type { SlaveReplicator } from './slave-replicator.js';
import { SyncMaster } from './sync-master.js';

export interface PromotionReport {
  readonly brokerId: number;
  readonly url: string;
  readonly durationMs: number;
  /** Consumer offsets rewritten by message id. */
  readonly offsetsRepaired: number;
  readonly offsetsChecked: number;
  readonly syncReplication: boolean;
  /** Each partition's end offset when replication stopped (`<topic>-<partition>` → offset): what the old master's
   * records beyond it were lost with it. */
  readonly ends: Readonly<Record<string, number>>;
}

export interface PromotionOptions {
  readonly ctx: BrokerContext;
  readonly registry: BrokerRegistry;
  readonly replicator: SlaveReplicator;
  readonly logger: Logger;
}

/** See the file comment. A refusal throws a MetaqError naming why. */
export async function promoteSlave(o: PromotionOptions): Promise<PromotionReport> {
  const { ctx, registry, replicator } = o;
  const sys = ctx.config.system;
  const logger = o.logger.child({ component: 'promotion' });
  const bar = replicator.promotionBar();
  if (bar !== null) {
    throw new MetaqError(ErrorCodes.BROKER, `slave ${sys.slaveId} of broker ${sys.brokerId} cannot be promoted: ${bar}`);
  }
  const t0 = Date.now();
  logger.warn({ brokerId: sys.brokerId, slaveId: sys.slaveId }, 'promoting this slave to master');
  await replicator.close();
  ctx.replication = null;
  const ends: Record<string, number> = {};
  for (const log of ctx.store.partitions()) ends[`${log.topic}-${log.partition}`] = log.endOffset;
  const repair = await repairConsumerOffsets({ session: registry.session, paths: new ZkPaths(ctx.config.zookeeper.zkRoot),
    store: ctx.store, brokerId: sys.brokerId, logger });
  await registry.becomeMaster();
  if (sys.syncReplication) {
    ctx.syncMaster = SyncMaster.start({ system: sys, store: ctx.store, session: registry.session,
      zkRoot: ctx.config.zookeeper.zkRoot, registry, logger });
  }
  ctx.putRefusal = null;
  const report: PromotionReport = { brokerId: sys.brokerId, url: ctx.brokerUrl, durationMs: Date.now() - t0,
    offsetsRepaired: repair.repaired, offsetsChecked: repair.checked, syncReplication: sys.syncReplication, ends };
  logger.warn({ ...report, ends: undefined }, 'promoted: this broker is the master now');
  return report;
}
