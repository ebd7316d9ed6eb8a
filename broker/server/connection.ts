import type { Socket } from 'node:net';
import { ProtocolError } from '../../sdk/errors.js';
import { RequestDecoder } from '../../sdk/protocol/request-decoder.js';
import type { PartitionLog } from '../store/partition-log.js';
import { whenAcked, type BrokerContext } from './broker-context.js';
import { writeAscii, writeDecimal } from '../../sdk/protocol/digits.js';
import { OutputBuffer } from './output-buffer.js';
import { dispatchRequest } from './dispatch.js';

/** Stop reading from a client while this many bytes of replies wait for its socket. */
const MAX_PENDING_OUTPUT = 8 * 1024 * 1024;
/** Stop reading from a client while this many of its puts wait to be stored. */
const MAX_UNSTORED_PUTS = 64 * 1024;

/** Put replies rendered while a chunk is processed, sent once the store reports the records stored. */
export class AckBatch {
  // Below 4 KiB, Buffer.allocUnsafe slices a shared pool; a separate allocation per batch is far slower.
  buf = Buffer.allocUnsafe(1024);
  len = 0;
  readonly opaques: number[] = [];
  log: PartitionLog | null = null;

  reserve(n: number): Buffer {
    if (this.len + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    return this.buf;
  }
}

/**
 * Ack batches are reused: one per partition per received chunk would otherwise allocate a buffer each, and those
 * allocations cost more than the rest of the put path together.
 */
const idleBatches: AckBatch[] = [];
const MAX_IDLE_BATCHES = 8192;

function takeBatch(log: PartitionLog): AckBatch {
  const b = idleBatches.pop() ?? new AckBatch();
  b.log = log;
  return b;
}

function releaseBatch(b: AckBatch): void {
  b.len = 0;
  b.opaques.length = 0;
  b.log = null;
  if (idleBatches.length < MAX_IDLE_BATCHES && b.buf.length <= 256 * 1024) idleBatches.push(b);
}

/** The parts of the server a connection reports to. */
export interface ConnectionOwner {
  markDirty(conn: Connection): void;
  connectionClosed(conn: Connection): void;
}

/**
 * One client connection: decodes pipelined requests as bytes arrive, dispatches them, and gathers replies
 * (matched by opaque, possibly out of order across partitions) into one socket write per event-loop turn.
 */
export class Connection {
  readonly out = new OutputBuffer();
  /** Requests received and not answered yet (long polls included). */
  inFlight = 0;
  private unstoredPuts = 0;
  private readonly decoder: RequestDecoder;
  private readonly batches = new Map<PartitionLog, AckBatch>();
  private dirty = false;
  private readPaused = false;
  private ending = false;
  private closed = false;
  /** Cancels parked long polls of this connection when it closes. */
  readonly cancellers = new Set<() => void>();

  constructor(readonly socket: Socket, readonly ctx: BrokerContext, private readonly owner: ConnectionOwner) {
    const sys = ctx.config.system;
    this.decoder = new RequestDecoder({ maxLineBytes: sys.maxLineBytes, maxBodyBytes: sys.maxMessageSize });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.updateReading());
    socket.on('error', (err) => ctx.logger.debug({ err, remote: socket.remoteAddress }, 'connection error'));
    socket.on('close', () => this.onClose());
    if (sys.idleTimeoutMs > 0) {
      socket.setTimeout(sys.idleTimeoutMs, () => {
        if (this.inFlight === 0) socket.destroy();
      });
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    this.decoder.push(chunk);
    try {
      for (let req = this.decoder.next(); req !== undefined; req = this.decoder.next()) {
        if (req.type === 'quit') {
          this.endGracefully();
          break;
        }
        this.inFlight++;
        dispatchRequest(this, req);
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      // A framing error leaves the stream unparseable: answer 400 and close the connection.
      this.ctx.logger.info({ remote: this.socket.remoteAddress, err: e.message }, 'closing connection after a framing error');
      this.replyResult(400, 0, e.message, false);
      this.endGracefully();
    }
    this.submitAcks();
  }

  /** The ack batch of `log` for the chunk being processed. */
  ackBatch(log: PartitionLog): AckBatch {
    let b = this.batches.get(log);
    if (b === undefined) {
      b = takeBatch(log);
      this.batches.set(log, b);
    }
    return b;
  }

  /** Hands this chunk's put replies to the store: each batch is released once its records are stored. */
  private submitAcks(): void {
    if (this.batches.size === 0) return;
    for (const batch of this.batches.values()) {
      this.unstoredPuts += batch.opaques.length;
      whenAcked(this.ctx, batch.log!, (err) => this.completeAcks(batch, err));
    }
    this.batches.clear();
    this.updateReading();
  }

  private completeAcks(batch: AckBatch, err: Error | null): void {
    const n = batch.opaques.length;
    this.unstoredPuts -= n;
    this.inFlight -= n;
    if (this.closed) {
      releaseBatch(batch);
      return;
    }
    if (err === null) {
      this.out.copyIn(batch.buf, batch.len);
    } else {
      this.ctx.stats.putFailed += n;
      const body = putFailure(this.ctx, batch.log!.topic, batch.log!.partition, err.message);
      for (let i = 0; i < n; i++) this.writeResult(500, batch.opaques[i]!, body);
    }
    releaseBatch(batch);
    this.markDirty();
    this.updateReading();
  }

  /** Answers a request with `result <code> <len> <opaque>\r\n<body>`. */
  replyResult(code: number, opaque: number, body: string, counted = true): void {
    if (counted) this.inFlight--;
    if (this.closed) return;
    this.writeResult(code, opaque, body);
    this.markDirty();
  }

  /** Answers a `get` with `value <len> <opaque>\r\n<data>`. */
  replyValue(opaque: number, data: Buffer): void {
    this.inFlight--;
    if (this.closed) return;
    const b = this.out.reserve(40);
    let p = this.out.position;
    p = writeAscii(b, p, 'value ');
    p = writeDecimal(b, p, data.length);
    b[p++] = 0x20;
    p = writeDecimal(b, p, opaque);
    b[p++] = 0x0d;
    b[p++] = 0x0a;
    this.out.commit(p);
    this.out.append(data);
    this.markDirty();
  }

  /** Answers with a raw pre-built frame (e.g. `stats config`). */
  replyRaw(frame: Buffer): void {
    this.inFlight--;
    if (this.closed) return;
    this.out.append(frame);
    this.markDirty();
  }

  private writeResult(code: number, opaque: number, body: string): void {
    const bodyLen = Buffer.byteLength(body, 'utf8');
    const b = this.out.reserve(40 + bodyLen);
    let p = this.out.position;
    p = writeAscii(b, p, 'result ');
    p = writeDecimal(b, p, code);
    b[p++] = 0x20;
    p = writeDecimal(b, p, bodyLen);
    b[p++] = 0x20;
    p = writeDecimal(b, p, opaque);
    b[p++] = 0x0d;
    b[p++] = 0x0a;
    p += b.write(body, p, 'utf8');
    this.out.commit(p);
  }

  private markDirty(): void {
    if (!this.dirty) {
      this.dirty = true;
      this.owner.markDirty(this);
    }
  }

  /** Called by the server once per turn for dirty connections. */
  flush(): void {
    this.dirty = false;
    if (this.closed) return;
    this.out.flushTo(this.socket);
    this.updateReading();
    if (this.ending && this.inFlight === 0) this.socket.end();
  }

  /** Pauses reading while replies or unstored puts pile up, so memory stays bounded for slow clients. */
  private updateReading(): void {
    if (this.closed || this.ending) return;
    const congested = this.socket.writableLength + this.out.pendingBytes > MAX_PENDING_OUTPUT ||
      this.unstoredPuts > MAX_UNSTORED_PUTS;
    if (congested && !this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    } else if (!congested && this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  /** Stops taking requests; closes once every request received so far has been answered. */
  endGracefully(): void {
    if (this.ending) return;
    this.ending = true;
    // Bytes still arriving are dropped (onData), but the socket keeps reading: a paused socket never sees the peer's
    // FIN, and a peer that closed first would hold the connection (and a graceful shutdown) until the timeout.
    this.socket.resume();
    for (const cancel of [...this.cancellers]) cancel();
    if (this.inFlight === 0 && !this.dirty) this.socket.end();
    else this.markDirty();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of [...this.cancellers]) cancel();
    this.ctx.transactions?.ownerClosed(this);
    this.owner.connectionClosed(this);
  }
}

/** MetaQ's put failure body. */
export function putFailure(ctx: BrokerContext, topic: string, partition: number, detail: string): string {
  return `Put message to [broker '${ctx.brokerUrl}'] [partition '${topic}-${partition}'] failed.Detail:${detail}`;
}
