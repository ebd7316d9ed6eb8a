/**
 * The publisher's resume position in ZooKeeper, for publishers that move between hosts.
 *
 * Guarantees:
 * - One live publisher per name: {@link ZkPositionStore.load} takes the ephemeral lock node
 *   `<zkRoot>/binlog/<name>/owner` and refuses with {@link BinlogPublisherConflictError} while another session holds
 *   it. The lock goes when the publisher stops ({@link ZkPositionStore.close}) or its session ends.
 * - Fenced saves: the position is written with a versioned setData (the version read at load, then each one written),
 *   so a publisher that lost its lock and kept running cannot overwrite its successor's position: its save fails, and
 *   so does the successor's if the stale one got in first (both stop; the next start reads the newest position).
 * - A lost session fails every later save at once: the ephemeral lock may already belong to someone else.
 */
import os from 'node:os';
import { CoordinationError, ZkPaths, type ZkSession } from '../../sdk/index.js';
import { decodePosition, encodePosition, type BinlogPosition, type PositionStore } from './position-store.js';

export interface ZkPositionStoreOptions {
  /** An open session; the store does not close it. */
  readonly session: ZkSession;
  /** The publisher's name: one live publisher per name. Letters, digits, `._-`. */
  readonly name: string;
  /** Default `/meta` (the cluster's `zk.zkRoot`). */
  readonly zkRoot?: string;
  /** Where the position is kept; default `<zkRoot>/binlog/<name>/position`. */
  readonly path?: string;
}

/**
 * Thrown when a publisher of the same name holds the lock, or wrote the position since this one read it.
 *
 * @example
 * ```ts
 * catch (e) { if (e instanceof BinlogPublisherConflictError) log.error(e.message); }   // stop: another one runs
 * ```
 */
export class BinlogPublisherConflictError extends CoordinationError {
  constructor(zkCode: string, message: string) {
    super(zkCode, message);
  }
}

/**
 * @example
 * ```ts
 * const session = await ZkSession.open({ connect: '127.0.0.1:2181', sessionTimeoutMs: 10_000, connectTimeoutMs: 10_000, logger });
 * const store = new ZkPositionStore({ session, name: 'shop' });
 * const publisher = new BinlogPublisher({ ..., positionStore: store });   // publisher.stop() closes the store
 * ```
 */
export class ZkPositionStore implements PositionStore {
  readonly path: string;
  readonly ownerPath: string;
  private readonly session: ZkSession;
  /** The version of the position node this store wrote or read last; -1: the node does not exist yet. */
  private version = -1;
  private locked = false;
  private lost: string | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(options: ZkPositionStoreOptions) {
    if (!/^[A-Za-z0-9._-]+$/.test(options.name) || options.name === '.' || options.name === '..') {
      throw new CoordinationError('BAD_ARGUMENTS', `binlog publisher name ${JSON.stringify(options.name)}: use letters, digits, . _ -`);
    }
    this.session = options.session;
    const dir = `${new ZkPaths(options.zkRoot ?? '/meta').root}/binlog/${options.name}`;
    this.path = options.path ?? `${dir}/position`;
    this.ownerPath = `${dir}/owner`;
  }

  /** Takes the lock, then reads the position. */
  async load(): Promise<BinlogPosition | undefined> {
    await this.lock();
    const node = await this.session.getData(this.path);
    if (node === undefined) {
      this.version = -1;
      return undefined;
    }
    this.version = node.stat.version;
    return decodePosition(node.data.toString('utf8'),
      (format) => new CoordinationError('BAD_ARGUMENTS', `${this.path} holds no binlog position (format ${format})`));
  }

  async save(position: BinlogPosition): Promise<void> {
    if (this.lost !== undefined) throw new BinlogPublisherConflictError('SESSION_EXPIRED', this.lost);
    if (!this.locked) throw new CoordinationError('BAD_ARGUMENTS', 'ZkPositionStore.save before load');
    const data = encodePosition(position);
    try {
      if (this.version < 0) {
        await this.session.ensurePath(this.path.slice(0, this.path.lastIndexOf('/')) || '/');
        await this.session.create(this.path, data);
        this.version = 0;
      } else {
        this.version = (await this.session.setData(this.path, data, this.version)).version;
      }
    } catch (e) {
      const code = (e as { zkCode?: string }).zkCode;
      if (code === 'BAD_VERSION' || code === 'NODE_EXISTS' || code === 'NO_NODE') {
        throw new BinlogPublisherConflictError(code, `${this.path} was written by another publisher since this one ` +
          `read it (${code}): one publisher per name; restart to resume from the newest position`);
      }
      throw e;
    }
  }

  /** Releases the lock (a successor may start at once). Idempotent. */
  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (!this.locked) return;
    this.locked = false;
    if (this.lost !== undefined || !this.session.isAlive) return;
    const node = await this.session.getData(this.ownerPath);
    if (node !== undefined && this.session.ownsEphemeral(node.stat)) await this.session.remove(this.ownerPath, node.stat.version);
  }

  private async lock(): Promise<void> {
    if (this.locked) return;
    await this.session.ensurePath(this.ownerPath.slice(0, this.ownerPath.lastIndexOf('/')));
    const me = JSON.stringify({ host: os.hostname(), pid: process.pid, since: new Date().toISOString() });
    try {
      await this.session.createEphemeral(this.ownerPath, me);
    } catch (e) {
      if ((e as { zkCode?: string }).zkCode !== 'NODE_EXISTS') throw e;
      const holder = await this.session.getData(this.ownerPath).catch(() => undefined);
      throw new BinlogPublisherConflictError('NODE_EXISTS', `another binlog publisher of this name is running ` +
        `(${this.ownerPath} held by ${holder?.data.toString('utf8') ?? 'another session'}): one publisher per name`);
    }
    this.locked = true;
    this.lost = undefined;
    this.unsubscribe = this.session.onSession((ev) => {
      if (ev.type === 'lost' && this.locked) {
        this.lost = `the ZooKeeper session holding ${this.ownerPath} was lost (${ev.reason}): another publisher may ` +
          'have taken over; restart to resume from the newest position';
      }
    });
  }
}
