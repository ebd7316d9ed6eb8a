/**
 * Pipelined raw-protocol JetStream publisher (the peer's load generator), run as its own process:
 *
 *   node --import tsx bench/nats-publisher.ts '{"port":4222,"subjectPrefix":"bench","partitions":8}'
 *
 * Each connection sends `CONNECT` and `SUB _INBOX.<conn>.* 1`, then pre-encoded
 * `PUB <prefix>.<partition> _INBOX.<conn>.<slot> <len>\r\n<payload>\r\n` frames with thousands in flight.
 * A JetStream PubAck (`MSG _INBOX.<conn>.<slot> 1 <len>\r\n{"stream":...,"seq":N}\r\n`) acks the slot;
 * an `{"error":...}` reply, a no-responders status (HMSG) or `-ERR` counts as an error. PING gets PONG.
 * (The `nats` npm client's js.publish costs ~45 µs of client CPU per message here, hence raw protocol.)
 */
import { CR, LF, SPACE, writeDecimal } from './ascii.js';
import { parseInt64 } from '../sdk/protocol/line-tokens.js';
import {
  buildRing, fillPattern, LOAD_DEFAULTS, optionsFromArgv, runLoadMain, type EncodedRing, type LoadOptions, type LoadProtocol, type ReplySink,
} from './load-driver.js';
import { isMain } from './processes.js';

export interface PublisherOptions extends LoadOptions {
  /** Subjects are `<prefix>.<partition>`; the stream must capture `<prefix>.>`. */
  readonly subjectPrefix: string;
}

const DEFAULTS: PublisherOptions = { ...LOAD_DEFAULTS, port: 4222, subjectPrefix: 'bench' };

const MSG = Buffer.from('MSG ');
const HMSG = Buffer.from('HMSG ');
const PING = Buffer.from('PING');
const PONG = Buffer.from('PONG\r\n');
const ERR = Buffer.from('-ERR');

function startsWith(buf: Buffer, pos: number, word: Buffer): boolean {
  return buf.length - pos >= word.length && buf.compare(word, 0, word.length, pos, pos + word.length) === 0;
}

/** The NATS `PUB` / PubAck side of the load driver. */
export function natsPublishProtocol(opts: PublisherOptions): LoadProtocol {
  const pool = Buffer.allocUnsafe(opts.payloadSize + 4096);
  fillPattern(pool, 54321);
  return {
    preamble: (connIndex) => Buffer.from(
      'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"lang":"bench","version":"0"}\r\n' +
      `SUB _INBOX.${connIndex}.* 1\r\n`),
    encodeRing(connIndex: number, slots: number): EncodedRing {
      const inbox = Buffer.from(`_INBOX.${connIndex}.`);
      const prefix = Buffer.from(`PUB ${opts.subjectPrefix}.`);
      const maxFrame = prefix.length + inbox.length + 40 + opts.payloadSize;
      return buildRing(connIndex, slots, opts.partitions, maxFrame, (frames, pos, slot, partition) => {
        pos += prefix.copy(frames, pos);
        pos = writeDecimal(frames, pos, partition);
        frames[pos++] = SPACE;
        pos += inbox.copy(frames, pos);
        pos = writeDecimal(frames, pos, slot);
        frames[pos++] = SPACE;
        pos = writeDecimal(frames, pos, opts.payloadSize);
        frames[pos++] = CR;
        frames[pos++] = LF;
        const off = (slot * 61) % 4096;
        pos += pool.copy(frames, pos, off, off + opts.payloadSize);
        frames[pos++] = CR;
        frames[pos++] = LF;
        return pos;
      });
    },
    parse: parseNatsReplies,
  };
}

/** Parses whole server frames; returns the bytes consumed. */
export function parseNatsReplies(buf: Buffer, sink: ReplySink): number {
  let pos = 0;
  while (pos < buf.length) {
    const cr = buf.indexOf(CR, pos);
    if (cr < 0 || cr + 1 >= buf.length) return pos;
    const isMsg = startsWith(buf, pos, MSG);
    if (isMsg || startsWith(buf, pos, HMSG)) {
      // MSG <subject> <sid> [reply] <#bytes> | HMSG <subject> <sid> [reply] <#hdr> <#total>
      const lastSpace = buf.lastIndexOf(SPACE, cr);
      const total = parseInt64(buf, lastSpace + 1, cr);
      const subjStart = pos + (isMsg ? MSG.length : HMSG.length);
      const subjEnd = buf.indexOf(SPACE, subjStart);
      const dot = buf.lastIndexOf(0x2e, subjEnd);
      const slot = parseInt64(buf, dot + 1, subjEnd);
      if (Number.isNaN(total) || Number.isNaN(slot)) throw new Error(`malformed ${buf.toString('latin1', pos, cr)}`);
      const end = cr + 2 + total + 2;
      if (end > buf.length) return pos;
      const body = cr + 2;
      // A PubAck starts `{"stream"`; an error reply starts `{"error"`.
      if (isMsg && buf[body + 2] === 0x73 /* s */) sink.ack(slot);
      else sink.fail(slot, `publish failed: ${buf.toString('utf8', body, Math.min(body + total, body + 200))}`);
      pos = end;
    } else if (startsWith(buf, pos, PING)) {
      sink.write(PONG);
      pos = cr + 2;
    } else if (startsWith(buf, pos, ERR)) {
      sink.fail(-1, buf.toString('utf8', pos, cr));
      pos = cr + 2;
    } else {
      // INFO, +OK, PONG
      pos = cr + 2;
    }
  }
  return pos;
}

if (isMain(import.meta.url)) {
  const opts = optionsFromArgv(DEFAULTS);
  runLoadMain(opts, natsPublishProtocol(opts));
}
