/**
 * The raw ceiling: a minimal Node TCP-to-file sink speaking the same framing as the broker, with none of
 * its work (no CRC check, no config, no index, one file per partition, topic ignored). Run as a process:
 *
 *   node --import tsx bench/raw-sink.ts '{"dataDir":"/tmp/x","mode":"group"}'
 *
 * - `put ... <len> <flag> [<checksum>] <opaque>\r\n<body>`: the body is copied with a 20-byte record header
 *   into its partition's buffer; once per event-loop turn every touched partition gets one writev
 *   (then one fdatasync in `group` mode), then every connection gets all its replies in one socket write:
 *   `result 200 <len> <opaque>\r\n<id> <partition> <offset>`.
 * - `mode: "interval"` acks after the write and fdatasyncs each written partition every `intervalMs`.
 * - `get <topic> <group> <partition> <offset> <maxSize> <opaque>` reads the window with one fs.read and
 *   answers `value <n> <opaque>\r\n<bytes>` (404 at the end): the consume ceiling.
 * Prints `{"event":"listening","port":N}` when ready.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CR, LF, decimalLength, joinCarry, writeDecimal } from './ascii.js';
import { LineTokens, parseInt64 } from '../sdk/protocol/line-tokens.js';
import { optionsFromArgv } from './load-driver.js';
import { isMain } from './processes.js';

export interface RawSinkOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly dataDir: string;
  readonly mode: 'group' | 'interval';
  readonly intervalMs: number;
}

const MAX_LINE = 1024;
const HEADER = 20;
const MIN_SLAB = 64 * 1024;
const MAX_SLAB = 4 * 1024 * 1024;
const TWO_32 = 0x1_0000_0000;

interface Partition {
  readonly index: number;
  readonly fd: number;
  /** File position up to which data has been written. */
  written: number;
  /** Log offset the next appended record gets. */
  appendAt: number;
  slab: Buffer;
  slabStart: number;
  slabUsed: number;
  nextSlab: number;
  full: Buffer[];
  unsynced: boolean;
}

class AckList {
  n = 0;
  opaque = new Int32Array(1024);
  partition = new Int32Array(1024);
  offset = new Float64Array(1024);
  id = new Float64Array(1024);

  push(opaque: number, partition: number, offset: number, id: number): void {
    if (this.n === this.opaque.length) this.grow();
    this.opaque[this.n] = opaque;
    this.partition[this.n] = partition;
    this.offset[this.n] = offset;
    this.id[this.n] = id;
    this.n++;
  }

  private grow(): void {
    const cap = this.opaque.length * 2;
    const o = new Int32Array(cap);
    o.set(this.opaque);
    const p = new Int32Array(cap);
    p.set(this.partition);
    const f = new Float64Array(cap);
    f.set(this.offset);
    const i = new Float64Array(cap);
    i.set(this.id);
    this.opaque = o;
    this.partition = p;
    this.offset = f;
    this.id = i;
  }
}

interface Conn {
  readonly socket: net.Socket;
  carry: Buffer | null;
  collecting: AckList;
  flushing: AckList;
}

/** Starts the sink; resolves with the server once it listens. */
export async function startRawSink(opts: RawSinkOptions): Promise<net.Server> {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const partitions = new Map<number, Partition>();
  const dirty = new Set<Partition>();
  const conns = new Set<Conn>();
  const line = new LineTokens();
  const { starts, ends } = line;
  let nextId = 1;
  let scheduled = false;
  let cycling = false;

  const partitionFor = (index: number): Partition => {
    let p = partitions.get(index);
    if (p === undefined) {
      const fd = fs.openSync(path.join(opts.dataDir, `${index}.log`), 'w+');
      p = { index, fd, written: 0, appendAt: 0, slab: Buffer.allocUnsafe(MIN_SLAB), slabStart: 0, slabUsed: 0,
        nextSlab: MIN_SLAB, full: [], unsynced: false };
      partitions.set(index, p);
    }
    return p;
  };

  const append = (p: Partition, src: Buffer, bodyStart: number, len: number, crc: number, id: number): number => {
    const need = HEADER + len;
    if (p.slab.length - p.slabUsed < need) {
      if (p.slabUsed > p.slabStart) p.full.push(p.slab.subarray(p.slabStart, p.slabUsed));
      p.nextSlab = Math.min(MAX_SLAB, p.nextSlab * 2);
      p.slab = Buffer.allocUnsafe(Math.max(need, p.nextSlab));
      p.slabStart = 0;
      p.slabUsed = 0;
    }
    const b = p.slab;
    const at = p.slabUsed;
    b.writeInt32BE(len, at);
    b.writeInt32BE(crc, at + 4);
    b.writeUInt32BE(Math.floor(id / TWO_32), at + 8);
    b.writeUInt32BE(id >>> 0, at + 12);
    b.writeInt32BE(0, at + 16);
    src.copy(b, at + HEADER, bodyStart, bodyStart + len);
    p.slabUsed = at + need;
    const offset = p.appendAt;
    p.appendAt += need;
    dirty.add(p);
    return offset;
  };

  const schedule = (): void => {
    if (scheduled || cycling) return;
    scheduled = true;
    setImmediate(runCycle);
  };

  function runCycle(): void {
    scheduled = false;
    if (dirty.size === 0) return;
    cycling = true;
    const parts = [...dirty];
    dirty.clear();
    for (const c of conns) {
      const t = c.flushing;
      c.flushing = c.collecting;
      c.collecting = t;
    }
    let remaining = parts.length;
    let failure: Error | null = null;
    const done = (err: Error | null): void => {
      failure ??= err;
      if (--remaining > 0) return;
      if (failure !== null) throw failure;
      for (const c of conns) sendReplies(c);
      cycling = false;
      if (dirty.size > 0) schedule();
    };
    for (const p of parts) {
      const bufs = p.full;
      bufs.push(p.slab.subarray(p.slabStart, p.slabUsed));
      p.full = [];
      p.slabStart = p.slabUsed;
      fs.writev(p.fd, bufs, p.written, (err, n) => {
        if (err !== null) return done(err);
        p.written += n;
        if (opts.mode === 'group') fs.fdatasync(p.fd, done);
        else {
          p.unsynced = true;
          done(null);
        }
      });
    }
  }

  const sendReplies = (c: Conn): void => {
    const acks = c.flushing;
    if (acks.n === 0) return;
    const out = Buffer.allocUnsafe(acks.n * 90);
    let pos = 0;
    for (let i = 0; i < acks.n; i++) {
      const id = acks.id[i]!;
      const part = acks.partition[i]!;
      const off = acks.offset[i]!;
      const bodyLen = decimalLength(id) + 1 + decimalLength(part) + 1 + decimalLength(off);
      pos += out.write('result 200 ', pos, 'latin1');
      pos = writeDecimal(out, pos, bodyLen);
      out[pos++] = 0x20;
      pos = writeDecimal(out, pos, acks.opaque[i]!);
      out[pos++] = CR;
      out[pos++] = LF;
      pos = writeDecimal(out, pos, id);
      out[pos++] = 0x20;
      pos = writeDecimal(out, pos, part);
      out[pos++] = 0x20;
      pos = writeDecimal(out, pos, off);
    }
    acks.n = 0;
    if (!c.socket.destroyed) c.socket.write(out.subarray(0, pos));
  };

  const answer = (c: Conn, code: number, opaque: number, text: string): void => {
    c.socket.write(`result ${code} ${Buffer.byteLength(text)} ${opaque}\r\n${text}`);
  };

  const serveGet = (c: Conn, partition: number, offset: number, maxSize: number, opaque: number): void => {
    const p = partitions.get(partition);
    const avail = p === undefined ? 0 : p.written - offset;
    if (p === undefined || avail <= 0 || maxSize <= 0) {
      answer(c, 404, opaque, `Could not find message at position ${offset}`);
      return;
    }
    const buf = Buffer.allocUnsafe(Math.min(maxSize, avail));
    fs.read(p.fd, buf, 0, buf.length, offset, (err, n) => {
      if (err !== null) return answer(c, 500, opaque, err.message);
      c.socket.cork();
      c.socket.write(`value ${n} ${opaque}\r\n`);
      c.socket.write(buf.subarray(0, n));
      c.socket.uncork();
    });
  };

  /** Handles every whole frame in `buf`; returns the bytes consumed, or -1 after closing on garbage. */
  const handle = (c: Conn, buf: Buffer): number => {
    let pos = 0;
    while (pos < buf.length) {
      const cr = buf.indexOf(CR, pos);
      if (cr < 0 || cr + 1 >= buf.length) {
        if (buf.length - pos > MAX_LINE) return fail(c, 'header line too long');
        return pos;
      }
      const n = line.split(buf, pos, cr) ? line.count : -1;
      if (n < 1 || buf[cr + 1] !== LF) return fail(c, 'malformed header line');
      const cmd = buf[pos];
      const opaque = parseInt64(buf, starts[n - 1]!, ends[n - 1]!);
      if (cmd === 0x70 /* p */ && (n === 6 || n === 7)) {
        const partition = parseInt64(buf, starts[2]!, ends[2]!);
        const len = parseInt64(buf, starts[3]!, ends[3]!);
        const crc = n === 7 ? parseInt64(buf, starts[5]!, ends[5]!) : 0;
        if (!(partition >= 0) || !(len >= 0) || Number.isNaN(opaque) || Number.isNaN(crc)) return fail(c, 'bad put');
        if (cr + 2 + len > buf.length) return pos;
        const id = nextId++;
        const offset = append(partitionFor(partition), buf, cr + 2, len, crc, id);
        c.collecting.push(opaque, partition, offset, id);
        pos = cr + 2 + len;
      } else if (cmd === 0x67 /* g */ && n === 7) {
        serveGet(c, parseInt64(buf, starts[3]!, ends[3]!), parseInt64(buf, starts[4]!, ends[4]!),
          parseInt64(buf, starts[5]!, ends[5]!), opaque);
        pos = cr + 2;
      } else if (cmd === 0x76 /* v */) {
        answer(c, 200, n > 1 ? opaque : 2147483647, 'raw-sink');
        pos = cr + 2;
      } else if (cmd === 0x71 /* q */) {
        c.socket.end();
        return -1;
      } else {
        return fail(c, `unsupported command ${JSON.stringify(buf.toString('latin1', pos, Math.min(cr, pos + 40)))}`);
      }
    }
    return pos;
  };

  const fail = (c: Conn, why: string): number => {
    answer(c, 400, 0, why);
    c.socket.end();
    return -1;
  };

  const server = net.createServer({ noDelay: true }, (socket) => {
    const c: Conn = { socket, carry: null, collecting: new AckList(), flushing: new AckList() };
    conns.add(c);
    socket.on('data', (chunk: Buffer) => {
      const buf = joinCarry(c.carry, chunk);
      const used = handle(c, buf);
      if (used < 0) {
        c.carry = null;
        socket.pause();
      } else {
        c.carry = used === buf.length ? null : Buffer.from(buf.subarray(used));
      }
      schedule();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => conns.delete(c));
  });

  if (opts.mode === 'interval') {
    const timer = setInterval(() => {
      for (const p of partitions.values()) {
        if (!p.unsynced) continue;
        p.unsynced = false;
        fs.fdatasync(p.fd, (err) => {
          if (err !== null) throw err;
        });
      }
    }, opts.intervalMs);
    timer.unref();
    server.on('close', () => clearInterval(timer));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return server;
}

const DEFAULTS: RawSinkOptions = { host: '127.0.0.1', port: 0, dataDir: '', mode: 'group', intervalMs: 1000 };

if (isMain(import.meta.url)) {
  const opts = optionsFromArgv(DEFAULTS);
  if (opts.dataDir === '') throw new Error('raw-sink: dataDir is required');
  startRawSink(opts).then((server) => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    process.stdout.write(`${JSON.stringify({ event: 'listening', port })}\n`);
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
  }, (err: unknown) => {
    process.stderr.write(`raw-sink: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
