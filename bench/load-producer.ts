/**
 * Pipelined raw-protocol MetaQ producer, run as its own process by bench/run.ts (and usable by hand):
 *
 *   node --import tsx bench/load-producer.ts '{"port":8123,"topic":"bench","partitions":8,"payloadSize":1024}'
 *
 * Frames are MetaQ 1.4 puts with a real checksum, pre-encoded once:
 *   put <topic> <partition> <len> 0 <crc32 & 0x7fffffff> <opaque>\r\n<len bytes>
 * Partitions are spread round-robin over all slots of all connections. Replies must be
 * `result 200 <len> <opaque>\r\n<body>`; any other code or frame counts as an error.
 * Prints JSON lines (see load-driver.ts); the last one is the result.
 */
import { crc32Masked } from '../sdk/protocol/record.js';
import { CR, LF, SPACE, writeDecimal } from './ascii.js';
import { parseInt64 } from '../sdk/protocol/line-tokens.js';
import {
  buildRing, fillPattern, LOAD_DEFAULTS, optionsFromArgv, runLoadMain, type EncodedRing, type LoadOptions, type LoadProtocol, type ReplySink,
} from './load-driver.js';
import { isMain } from './processes.js';

export interface ProducerOptions extends LoadOptions {
  readonly topic: string;
}

const DEFAULTS: ProducerOptions = { ...LOAD_DEFAULTS, port: 8123, topic: 'bench' };

const RESULT = Buffer.from('result ');
const PATTERN_SPREAD = 4096;

/** The MetaQ `put` / `result` side of the load driver. */
export function metaqPutProtocol(opts: ProducerOptions): LoadProtocol {
  const topic = Buffer.from(opts.topic);
  const pool = Buffer.allocUnsafe(opts.payloadSize + PATTERN_SPREAD);
  fillPattern(pool, 12345);
  return {
    preamble: () => null,
    encodeRing(connIndex: number, slots: number): EncodedRing {
      const maxHeader = 4 + topic.length + 1 + 11 + 1 + 11 + 3 + 11 + 1 + 11 + 2;
      return buildRing(connIndex, slots, opts.partitions, maxHeader + opts.payloadSize, (frames, pos, slot, partition) => {
        const off = (slot * 61) % PATTERN_SPREAD;
        const body = Buffer.from(pool.subarray(off, off + opts.payloadSize));
        if (body.length >= 4) body.writeUInt32BE(((connIndex << 20) ^ slot) >>> 0, 0);
        pos += frames.write('put ', pos, 'latin1');
        pos += topic.copy(frames, pos);
        frames[pos++] = SPACE;
        pos = writeDecimal(frames, pos, partition);
        frames[pos++] = SPACE;
        pos = writeDecimal(frames, pos, opts.payloadSize);
        pos += frames.write(' 0 ', pos, 'latin1');
        pos = writeDecimal(frames, pos, crc32Masked(body));
        frames[pos++] = SPACE;
        pos = writeDecimal(frames, pos, slot);
        frames[pos++] = CR;
        frames[pos++] = LF;
        return pos + body.copy(frames, pos);
      });
    },
    parse: parseResults,
  };
}

/** Parses whole `result <code> <len> <opaque>\r\n<body>` frames; returns the bytes consumed. */
export function parseResults(buf: Buffer, sink: ReplySink): number {
  let pos = 0;
  while (pos < buf.length) {
    const cr = buf.indexOf(CR, pos);
    if (cr < 0 || cr + 1 >= buf.length) {
      if (buf.length - pos > 256) throw new Error(`reply line longer than 256 bytes: ${snippet(buf, pos)}`);
      return pos;
    }
    if (buf[cr + 1] !== LF || buf.compare(RESULT, 0, RESULT.length, pos, pos + RESULT.length) !== 0) {
      throw new Error(`expected a result frame, got ${snippet(buf, pos)}`);
    }
    const codeStart = pos + RESULT.length;
    const codeEnd = buf.indexOf(SPACE, codeStart);
    const lenEnd = codeEnd < 0 ? -1 : buf.indexOf(SPACE, codeEnd + 1);
    if (codeEnd < 0 || lenEnd < 0 || lenEnd > cr) throw new Error(`malformed result line: ${snippet(buf, pos)}`);
    const code = parseInt64(buf, codeStart, codeEnd);
    const len = parseInt64(buf, codeEnd + 1, lenEnd);
    const opaque = parseInt64(buf, lenEnd + 1, cr);
    if (Number.isNaN(code) || Number.isNaN(len) || Number.isNaN(opaque) || len < 0) {
      throw new Error(`malformed result line: ${snippet(buf, pos)}`);
    }
    const end = cr + 2 + len;
    if (end > buf.length) return pos;
    if (code === 200) sink.ack(opaque);
    else sink.fail(opaque, `result ${code}: ${buf.toString('utf8', cr + 2, Math.min(end, cr + 2 + 200))}`);
    pos = end;
  }
  return pos;
}

function snippet(buf: Buffer, pos: number): string {
  return JSON.stringify(buf.toString('latin1', pos, Math.min(buf.length, pos + 60)));
}

if (isMain(import.meta.url)) {
  const opts = optionsFromArgv(DEFAULTS);
  runLoadMain(opts, metaqPutProtocol(opts));
}
