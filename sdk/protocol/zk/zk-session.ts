/**
 * ZooKeeper for brokers, clients and the admin CLI: node-zookeeper-client behind Promises, plus what that library
 * lacks and a coordinator needs.
 *
 * - A session watchdog. The library does not notice a frozen or unreachable server (it stays "connected" and
 *   queues requests), so the session pings every third of the session timeout and, when nothing succeeded for two
 *   thirds of it, treats the session as lost: it reports `lost` (stop acting as an owner now: the server is about to
 *   hand the ephemerals to someone else, if it has not already), closes that client and opens a new session.
 * - Sessions replaced, not resumed: after an expiry (reported by the server or decided by the watchdog) a new client
 *   connects, retrying with backoff until {@link ZkSession.close}; `established` listeners then re-create their
 *   ephemerals, and every {@link ZkSession.watchChildren} / {@link ZkSession.watchData} is read again and re-armed.
 * - Ephemerals that survive their owner: {@link ZkSession.createEphemeral} takes over a node left by an earlier
 *   session of this same process (a watchdog decision can beat the server's expiry) and refuses one held by
 *   anybody else.
 * - Every operation has a deadline, and every failure is a CoordinationError naming the path and ZooKeeper's code.
 */
import zookeeper from 'node-zookeeper-client';
import type { Client, Event, Exception, Stat } from 'node-zookeeper-client';
import type { Logger } from 'pino';
import { CoordinationError, ShuttingDownError } from '../../errors.js';

/** What a node looks like, as far as callers care. */
export interface ZkStat {
  readonly version: number;
  readonly cversion: number;
  readonly numChildren: number;
  /** The session (hex) holding an ephemeral node; '0000000000000000' for a persistent one. */
  readonly ephemeralOwner: string;
}

/** A node's data and stat. */
export interface ZkNode {
  readonly data: Buffer;
  readonly stat: ZkStat;
}

export type ZkCreateMode = 'persistent' | 'ephemeral' | 'persistent_sequential' | 'ephemeral_sequential';

/** One operation of {@link ZkSession.multi}; all succeed or none does. `version` -1 matches any version. */
export type ZkOp =
  | { readonly op: 'check'; readonly path: string; readonly version: number }
  | { readonly op: 'set'; readonly path: string; readonly data: Buffer | string; readonly version: number }
  | { readonly op: 'create'; readonly path: string; readonly data?: Buffer | string; readonly mode?: ZkCreateMode }
  | { readonly op: 'remove'; readonly path: string; readonly version: number };

/**
 * Session events. `lost`: the session is gone or may be (`expired` said by the server, `watchdog` when the server
 * stopped answering), so ephemerals and ownerships must be considered lost at once. `established`: a session is up
 * (`first` for the one {@link ZkSession.open} made); re-create ephemerals on a later one.
 */
export type ZkSessionEvent =
  | { readonly type: 'lost'; readonly reason: 'expired' | 'watchdog'; readonly sessionId: string }
  | { readonly type: 'established'; readonly first: boolean; readonly sessionId: string };

export interface ZkSessionOptions {
  /** `host:port[,host:port...][/chroot]` */
  readonly connect: string;
  /** Session timeout asked of the server (it may negotiate it into [2, 20] ticks). */
  readonly sessionTimeoutMs: number;
  /** How long {@link ZkSession.open} waits for the first session. */
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
  /** Deadline of one operation; default: the session timeout. */
  readonly operationTimeoutMs?: number;
  /** Join an existing session instead of opening one (tests use it to expire a session on purpose). */
  readonly resume?: ZkCredentials;
}

/** What identifies a session to the server. */
export interface ZkCredentials {
  readonly sessionId: Buffer;
  readonly password: Buffer;
}

/** A watch made by {@link ZkSession.watchChildren} or {@link ZkSession.watchData}. */
export interface ZkWatch {
  /** Stops calling the listener (ZooKeeper's one-shot watch may still fire once, and is ignored). */
  cancel(): void;
}

const MODES: Record<ZkCreateMode, number> = {
  persistent: zookeeper.CreateMode.PERSISTENT,
  ephemeral: zookeeper.CreateMode.EPHEMERAL,
  persistent_sequential: zookeeper.CreateMode.PERSISTENT_SEQUENTIAL,
  ephemeral_sequential: zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL,
};

const NO_SESSION = '0000000000000000';

/** ZooKeeper's name of a failure (`NO_NODE`, ...), or `ERROR` for something that is not a ZooKeeper exception. */
export function zkCodeOf(err: unknown): string {
  if (err instanceof CoordinationError) return err.zkCode;
  const e = err as Partial<Exception> | undefined;
  return typeof e?.getName === 'function' ? e.getName() : 'ERROR';
}

function toStat(s: Stat): ZkStat {
  return {
    version: s.version,
    cversion: s.cversion,
    numChildren: s.numChildren,
    ephemeralOwner: Buffer.isBuffer(s.ephemeralOwner) ? s.ephemeralOwner.toString('hex') : NO_SESSION,
  };
}

const NO_STAT: ZkStat = { version: -1, cversion: -1, numChildren: 0, ephemeralOwner: NO_SESSION };

/** The node of a getData answer (an error answer has no stat; its value is never used). */
function toNode(data: Buffer | undefined, stat: Stat | undefined): ZkNode {
  return { data: data ?? Buffer.alloc(0), stat: stat === undefined ? NO_STAT : toStat(stat) };
}

function toBuffer(data: Buffer | string | undefined): Buffer | undefined {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** A listener-driven watch that re-reads and re-arms itself, across sessions too. */
class Watcher {
  cancelled = false;
  private reading = false;
  private again = false;

  constructor(private readonly session: ZkSession, private readonly read: (watcher: (e: Event) => void) => Promise<void>) {}

  /** Reads now (or right after the read in progress) and arms the next one-shot watch. */
  refresh(): void {
    if (this.cancelled) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    this.again = false;
    this.read(() => this.refresh()).then(() => {
      this.reading = false;
      if (this.again) this.refresh();
    }, (err: unknown) => {
      this.reading = false;
      // A read lost with its session is redone when the next one is established; other failures retry soon.
      if (this.cancelled || this.session.closed) return;
      this.session.logger.debug({ err }, 'ZooKeeper watch read failed; retrying');
      setTimeout(() => this.refresh(), 200).unref();
    });
  }
}

/**
 * A ZooKeeper session that survives expiry (see the file comment).
 *
 * @example
 * ```ts
 * const zk = await ZkSession.open({ connect: '127.0.0.1:2181', sessionTimeoutMs: 30_000, connectTimeoutMs: 30_000, logger });
 * zk.onSession((e) => { if (e.type === 'established' && !e.first) void register(); });
 * await zk.ensurePath('/meta/brokers/ids');
 * await zk.createEphemeral('/meta/brokers/ids/0/master', 'meta://10.0.0.7:8123');
 * const w = zk.watchChildren('/meta/brokers/topics-pub/orders', (children) => refresh(children ?? []));
 * // ...
 * w.cancel();
 * await zk.close();
 * ```
 */
export class ZkSession {
  readonly logger: Logger;
  private client: Client;
  private readonly listeners = new Set<(e: ZkSessionEvent) => void>();
  private readonly watchers = new Set<Watcher>();
  /** Ids (hex) of this process's earlier sessions: their leftover ephemerals are ours to take over. */
  private readonly pastSessions = new Set<string>();
  private currentId = NO_SESSION;
  private alive = false;
  private lastOk = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private isClosed = false;
  private readonly opTimeoutMs: number;

  private constructor(private readonly options: ZkSessionOptions) {
    this.logger = options.logger;
    this.opTimeoutMs = options.operationTimeoutMs ?? options.sessionTimeoutMs;
    this.client = this.newClient(options.resume);
  }

  /** Connects; rejects with a CoordinationError when no session is up within `connectTimeoutMs`. */
  static async open(options: ZkSessionOptions): Promise<ZkSession> {
    const s = new ZkSession(options);
    try {
      await s.connect(s.client, options.connectTimeoutMs);
    } catch (err) {
      s.isClosed = true;
      s.client.close();
      throw err;
    }
    s.established(true);
    return s;
  }

  /** The current session's id (hex). */
  get sessionId(): string {
    return this.currentId;
  }

  /** The current session's id and password (tests expire a session by joining it from a second client). */
  get credentials(): ZkCredentials {
    return { sessionId: this.client.getSessionId(), password: this.client.getSessionPassword() };
  }

  /** True while the session is believed valid (false between a `lost` and the next `established`). */
  get isAlive(): boolean {
    return this.alive;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The session timeout the server granted. */
  get sessionTimeoutMs(): number {
    return this.client.getSessionTimeout() || this.options.sessionTimeoutMs;
  }

  /** Calls `listener` on every session event; returns the unsubscribe function. */
  onSession(listener: (e: ZkSessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  /** Creates a node; resolves with its path (with the sequence number of a sequential one). */
  create(path: string, data?: Buffer | string, mode: ZkCreateMode = 'persistent'): Promise<string> {
    return this.op(path, 'create', (c, cb) => {
      const buf = toBuffer(data);
      if (buf === undefined) c.create(path, MODES[mode], cb);
      else c.create(path, buf, MODES[mode], cb);
    });
  }

  /** Creates the persistent node and its missing parents; a node already there is fine. */
  async ensurePath(path: string): Promise<void> {
    await this.op(path, 'mkdirp', (c, cb) => c.mkdirp(path, cb));
  }

  /**
   * Creates an ephemeral node owned by this session, taking over one left by an earlier session of this process and
   * updating the data of one this session already holds. Rejects with CoordinationError `NODE_EXISTS` when another
   * session holds it.
   */
  async createEphemeral(path: string, data: Buffer | string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.create(path, data, 'ephemeral');
        return;
      } catch (err) {
        if (zkCodeOf(err) !== 'NODE_EXISTS') throw err;
      }
      const node = await this.getData(path);
      if (node === undefined) continue;  // gone meanwhile: create again
      const owner = node.stat.ephemeralOwner;
      if (owner === this.currentId) {
        if (!node.data.equals(toBuffer(data)!)) await this.setData(path, data, node.stat.version);
        return;
      }
      if (!this.pastSessions.has(owner)) {
        throw new CoordinationError('NODE_EXISTS', `${path} is held by another ZooKeeper session (0x${owner}, data ${JSON.stringify(node.data.toString())})`);
      }
      await this.remove(path, node.stat.version).catch((err: unknown) => {
        if (zkCodeOf(err) !== 'BAD_VERSION') throw err;
      });
    }
    throw new CoordinationError('NODE_EXISTS', `${path} kept changing while this session tried to create it`);
  }

  /** True when the current session holds the ephemeral node described by `stat`. */
  ownsEphemeral(stat: ZkStat): boolean {
    return stat.ephemeralOwner === this.currentId;
  }

  /** The node's data and stat; undefined when it does not exist. */
  getData(path: string): Promise<ZkNode | undefined> {
    return this.readOrMissing<ZkNode>(path, 'getData', (c, cb) => c.getData(path, (e, data, stat) => cb(e, toNode(data, stat))));
  }

  /** The children's names; undefined when the node does not exist. */
  getChildren(path: string): Promise<string[] | undefined> {
    return this.readOrMissing(path, 'getChildren', (c, cb) => c.getChildren(path, (e, children) => cb(e, children)));
  }

  /** The node's stat; undefined when it does not exist. */
  async exists(path: string): Promise<ZkStat | undefined> {
    const stat = await this.op<Stat | null>(path, 'exists', (c, cb) => c.exists(path, cb));
    return stat === null || stat === undefined ? undefined : toStat(stat);
  }

  /** Sets the data; with `version` only if the node is still at that version (else `BAD_VERSION`). */
  async setData(path: string, data: Buffer | string, version = -1): Promise<ZkStat> {
    return toStat(await this.op<Stat>(path, 'setData', (c, cb) => c.setData(path, toBuffer(data)!, version, cb)));
  }

  /** Deletes the node; resolves false when it did not exist. */
  async remove(path: string, version = -1): Promise<boolean> {
    try {
      await this.op(path, 'remove', (c, cb) => c.remove(path, version, (e) => cb(e, undefined)));
      return true;
    } catch (err) {
      if (zkCodeOf(err) === 'NO_NODE') return false;
      throw err;
    }
  }

  /** Deletes the node and everything under it (children first); a missing node is fine. */
  async removeRecursive(path: string): Promise<void> {
    const children = await this.getChildren(path);
    if (children === undefined) return;
    for (const c of children) await this.removeRecursive(`${path}/${c}`);
    await this.remove(path).catch((err: unknown) => {
      // A child created meanwhile: go round again.
      if (zkCodeOf(err) !== 'NOT_EMPTY') throw err;
      return this.removeRecursive(path);
    });
  }

  /**
   * Runs the operations atomically. On failure rejects with a CoordinationError whose `zkCode` is the failing
   * operation's code and whose message names its path.
   */
  async multi(ops: readonly ZkOp[]): Promise<void> {
    const first = ops[0]?.path ?? '/';
    await this.op(first, 'multi', (c, cb) => {
      const t = c.transaction();
      for (const o of ops) {
        if (o.op === 'check') t.check(o.path, o.version);
        else if (o.op === 'set') t.setData(o.path, toBuffer(o.data)!, o.version);
        else if (o.op === 'remove') t.remove(o.path, o.version);
        else t.create(o.path, toBuffer(o.data) ?? Buffer.alloc(0), MODES[o.mode ?? 'persistent']);
      }
      // The library's check/setData/remove read `version || -1`, turning version 0 (a node never written since its
      // creation: every fresh owner node) into "any version". Put the versions asked for back.
      const queued = (t as unknown as { ops: { version?: number }[] }).ops;
      ops.forEach((o, i) => {
        const q = queued[i];
        if (q !== undefined && o.op !== 'create') q.version = o.version;
      });
      t.commit((err, results: unknown) => {
        if (err === null || err === undefined) return cb(null, undefined);
        const list = Array.isArray(results) ? results as { err?: number }[] : [];
        const at = list.findIndex((r) => r.err !== undefined && r.err !== 0 && r.err !== -2 /* RUNTIME_INCONSISTENCY: rolled back */);
        const failed = at >= 0 ? ops[at] : undefined;
        const code = failed !== undefined ? exceptionName(list[at]!.err!) : zkCodeOf(err);
        cb(new CoordinationError(code, `ZooKeeper multi failed: ${failed === undefined ? String(err) : `${failed.op} ${failed.path}: ${code}`}`,
          { retriable: code === 'CONNECTION_LOSS' || code === 'OPERATION_TIMEOUT' }), undefined);
      });
    });
  }

  /**
   * Calls `listener` with the children of `path` now and after every change (undefined while the node does not
   * exist), re-arming ZooKeeper's one-shot watch each time and after a new session. Calls coalesce: the listener
   * always gets the latest list, possibly the same one twice.
   */
  watchChildren(path: string, listener: (children: string[] | undefined) => void): ZkWatch {
    return this.watch(path, listener, (watcher) =>
      this.readOrMissing<string[]>(path, 'getChildren', (c, cb) => c.getChildren(path, watcher, (e, ch) => cb(e, ch))));
  }

  /** As {@link watchChildren}, for the node's data. */
  watchData(path: string, listener: (node: ZkNode | undefined) => void): ZkWatch {
    return this.watch(path, listener, (watcher) =>
      this.readOrMissing<ZkNode>(path, 'getData', (c, cb) => c.getData(path, watcher, (e, data, stat) => cb(e, toNode(data, stat)))));
  }

  /** Closes the session (its ephemerals go at once) and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.alive = false;
    clearInterval(this.watchdog);
    clearTimeout(this.reconnectTimer);
    for (const w of this.watchers) w.cancelled = true;
    this.watchers.clear();
    const client = this.client;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      client.once('disconnected', () => { clearTimeout(timer); resolve(); });
      client.close();
    });
  }

  // ---- internals ----

  private newClient(resume?: ZkCredentials): Client {
    const options: Record<string, unknown> = { sessionTimeout: this.options.sessionTimeoutMs, spinDelay: 200, retries: 0 };
    if (resume !== undefined) {
      options.sessionId = resume.sessionId;
      options.sessionPassword = resume.password;
    }
    const client = zookeeper.createClient(this.options.connect, options);
    const generation = ++this.generation;
    client.on('expired', () => {
      if (generation === this.generation) this.lose('expired');
    });
    return client;
  }

  private connect(client: Client, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.removeListener('connected', onConnected);
        client.removeListener('expired', onExpired);
        reject(new CoordinationError('CONNECTION_LOSS',
          `could not connect to ZooKeeper at ${this.options.connect} within ${timeoutMs} ms`, { retriable: true }));
      }, timeoutMs);
      const onConnected = (): void => {
        clearTimeout(timer);
        client.removeListener('expired', onExpired);
        resolve();
      };
      // Only a resumed session can be expired at connect: fail now rather than at the timeout.
      const onExpired = (): void => {
        clearTimeout(timer);
        client.removeListener('connected', onConnected);
        reject(new CoordinationError('SESSION_EXPIRED', `the ZooKeeper session to resume has expired (${this.options.connect})`));
      };
      client.once('connected', onConnected);
      client.once('expired', onExpired);
      client.connect();
    });
  }

  private established(first: boolean): void {
    this.currentId = this.client.getSessionId().toString('hex');
    this.alive = true;
    this.lastOk = Date.now();
    this.logger.info({ sessionId: this.currentId, timeoutMs: this.sessionTimeoutMs, first }, 'ZooKeeper session established');
    this.startWatchdog();
    this.emit({ type: 'established', first, sessionId: this.currentId });
    for (const w of this.watchers) w.refresh();
  }

  /** The session is gone (or may be): report it, drop the client, open a new session. */
  private lose(reason: 'expired' | 'watchdog'): void {
    if (this.isClosed || !this.alive) return;
    this.alive = false;
    clearInterval(this.watchdog);
    const old = this.currentId;
    this.pastSessions.add(old);
    this.logger.warn({ sessionId: old, reason }, 'ZooKeeper session lost; opening a new one');
    this.emit({ type: 'lost', reason, sessionId: old });
    const dead = this.client;
    this.generation++;  // the old client's late 'expired' is not news
    dead.close();
    this.reconnect(1);
  }

  private reconnect(attempt: number): void {
    if (this.isClosed) return;
    this.client = this.newClient();
    const client = this.client;
    this.connect(client, Math.max(this.options.connectTimeoutMs, 1000)).then(() => {
      if (this.isClosed || client !== this.client) return;
      this.established(false);
    }, (err: unknown) => {
      if (this.isClosed || client !== this.client) return;
      client.close();
      const delay = Math.min(200 * 2 ** Math.min(attempt, 6), 10_000) * (0.5 + Math.random() / 2);
      this.logger.warn({ err, attempt }, 'ZooKeeper reconnect failed; retrying');
      this.reconnectTimer = setTimeout(() => this.reconnect(attempt + 1), delay);
      this.reconnectTimer.unref();
    });
  }

  /** Pings every third of the session timeout; nothing succeeding for two thirds of it loses the session. */
  private startWatchdog(): void {
    clearInterval(this.watchdog);
    const timeout = this.sessionTimeoutMs;
    const client = this.client;
    this.watchdog = setInterval(() => {
      if (client !== this.client || !this.alive) return;
      if (Date.now() - this.lastOk > (timeout * 2) / 3) {
        this.lose('watchdog');
        return;
      }
      client.exists('/', (err) => {
        if (err === null || err === undefined) this.lastOk = Math.max(this.lastOk, Date.now());
        else if (zkCodeOf(err) === 'SESSION_EXPIRED' && client === this.client) this.lose('expired');
      });
    }, Math.max(50, Math.floor(timeout / 3)));
    this.watchdog.unref();
  }

  private emit(e: ZkSessionEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.logger.error({ err }, 'ZooKeeper session listener threw');
      }
    }
  }

  /**
   * A watch of `path` whose `read` arms ZooKeeper's one-shot watcher and yields undefined for a missing node; a
   * missing node is then watched for its creation (read again at once if it appeared meanwhile).
   */
  private watch<T>(path: string, listener: (value: T | undefined) => void,
    read: (watcher: (e: Event) => void) => Promise<T | undefined>): ZkWatch {
    if (this.isClosed) throw new ShuttingDownError('the ZooKeeper session');
    const w = new Watcher(this, async (watcher) => {
      for (;;) {
        const value = await read(watcher);
        if (value !== undefined || await this.armExists(path, watcher)) {
          listenerCall(listener, value);
          return;
        }
      }
    });
    this.watchers.add(w);
    w.refresh();
    return {
      cancel: () => {
        w.cancelled = true;
        this.watchers.delete(w);
      },
    };
  }

  /** Watches a missing node for its creation; false when it appeared meanwhile (read it again). */
  private async armExists(path: string, watcher: (e: Event) => void): Promise<boolean> {
    const stat = await this.op<Stat | null>(path, 'exists', (c, cb) => c.exists(path, watcher, cb));
    return stat === null || stat === undefined;
  }


  private async readOrMissing<T>(path: string, what: string, run: (c: Client, cb: (e: Error | Exception | null, v: T) => void) => void): Promise<T | undefined> {
    try {
      return await this.op<T>(path, what, run);
    } catch (err) {
      if (zkCodeOf(err) === 'NO_NODE') return undefined;
      throw err;
    }
  }

  /** Runs one request on the current client with the operation deadline; failures become CoordinationErrors. */
  private op<T>(path: string, what: string, run: (c: Client, cb: (e: Error | Exception | null, v: T) => void) => void): Promise<T> {
    if (this.isClosed) return Promise.reject(new ShuttingDownError('the ZooKeeper session'));
    const client = this.client;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new CoordinationError('OPERATION_TIMEOUT', `ZooKeeper ${what} ${path} got no answer within ${this.opTimeoutMs} ms`, { retriable: true }));
      }, this.opTimeoutMs);
      timer.unref();
      run(client, (e, v) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e === null || e === undefined) {
          if (client === this.client) this.lastOk = Date.now();
          resolve(v);
          return;
        }
        if (e instanceof CoordinationError) {
          reject(e);
          return;
        }
        const code = zkCodeOf(e);
        // The server says the session is gone before the client's own 'expired' (or the watchdog) does: act now.
        if (code === 'SESSION_EXPIRED' && client === this.client) this.lose('expired');
        const retriable = code === 'CONNECTION_LOSS' || code === 'SESSION_EXPIRED' || code === 'OPERATION_TIMEOUT';
        reject(new CoordinationError(code, `ZooKeeper ${what} ${path} failed: ${code}`, { retriable, cause: e }));
      });
    });
  }
}

function listenerCall<T>(listener: (v: T) => void, value: T): void {
  try {
    listener(value);
  } catch {
    // A throwing listener must not stop the watch; listeners log their own failures.
  }
}

/** ZooKeeper's name for an error code of a multi result. */
function exceptionName(code: number): string {
  for (const [name, value] of Object.entries(zookeeper.Exception)) {
    if (value === code && /^[A-Z_]+$/.test(name)) return name;
  }
  return `ZK_${code}`;
}
