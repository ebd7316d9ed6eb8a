/**
 * A minimal streaming zip writer for one entry (deflate), enough for MetaQ's `archive,<age>,zip` retention: the
 * archive `<segment>.meta.zip` holds the single entry `<segment>.meta`. The local header is written with
 * placeholders first and patched once the CRC and sizes are known, so memory stays bounded for 1 GiB segments.
 * No zip64: entries must stay below 4 GiB.
 */
import { once } from 'node:events';
import { crc32, createDeflateRaw } from 'node:zlib';
import { StorageError } from '../../sdk/errors.js';
import type { FileIO } from './file-io.js';

const LOCAL_SIG = 0x04034b50;
const CENTRAL_SIG = 0x02014b50;
const END_SIG = 0x06054b50;
const READ_CHUNK = 1 << 20;

/** Zips the file `src` into the new file `dest` as one entry named `entryName`; fdatasyncs `dest`. */
export async function writeZip(io: FileIO, src: string, dest: string, entryName: string): Promise<void> {
  const st = await io.stat(src);
  if (st.size >= 0xffffffff) throw new StorageError(`cannot zip ${src}: ${st.size} bytes needs zip64`);
  const name = Buffer.from(entryName, 'utf8');
  const { time, date } = dosDateTime(new Date(st.mtimeMs));
  const inFd = await io.open(src, 'r');
  const outFd = await io.open(dest, 'w');
  try {
    let outPos = 30 + name.length;
    await io.writev(outFd, [localHeader(name, time, date, 0, 0, 0)], 0);
    const deflate = createDeflateRaw({ level: 6 });
    const produced: Buffer[] = [];
    deflate.on('data', (b: Buffer) => produced.push(b));
    const ended = once(deflate, 'end');
    const drain = async (): Promise<void> => {
      if (produced.length === 0) return;
      const bufs = produced.splice(0);
      outPos += await io.writev(outFd, bufs, outPos);
    };
    let crc = 0;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (let pos = 0; pos < st.size;) {
      const n = await io.read(inFd, buf, 0, Math.min(READ_CHUNK, st.size - pos), pos);
      if (n === 0) throw new StorageError(`${src} shrank while being zipped`);
      const chunk = Buffer.from(buf.subarray(0, n));
      crc = crc32(chunk, crc);
      await new Promise<void>((res, rej) => deflate.write(chunk, (e) => (e ? rej(e) : res())));
      await drain();
      pos += n;
    }
    deflate.end();
    await ended;
    await drain();
    const compressed = outPos - 30 - name.length;
    await io.writev(outFd, [localHeader(name, time, date, crc >>> 0, compressed, st.size)], 0);
    const central = centralHeader(name, time, date, crc >>> 0, compressed, st.size);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(END_SIG, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(central.length, 12);
    end.writeUInt32LE(outPos, 16);
    await io.writev(outFd, [central, end], outPos);
    await io.fdatasync(outFd);
  } finally {
    await io.close(inFd);
    await io.close(outFd);
  }
}

function localHeader(name: Buffer, time: number, date: number, crc: number, csize: number, usize: number): Buffer {
  const h = Buffer.alloc(30 + name.length);
  h.writeUInt32LE(LOCAL_SIG, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(0x0800, 6); // UTF-8 names
  h.writeUInt16LE(8, 8);
  h.writeUInt16LE(time, 10);
  h.writeUInt16LE(date, 12);
  h.writeUInt32LE(crc, 14);
  h.writeUInt32LE(csize, 18);
  h.writeUInt32LE(usize, 22);
  h.writeUInt16LE(name.length, 26);
  name.copy(h, 30);
  return h;
}

function centralHeader(name: Buffer, time: number, date: number, crc: number, csize: number, usize: number): Buffer {
  const h = Buffer.alloc(46 + name.length);
  h.writeUInt32LE(CENTRAL_SIG, 0);
  h.writeUInt16LE(20, 4);
  h.writeUInt16LE(20, 6);
  h.writeUInt16LE(0x0800, 8);
  h.writeUInt16LE(8, 10);
  h.writeUInt16LE(time, 12);
  h.writeUInt16LE(date, 14);
  h.writeUInt32LE(crc, 16);
  h.writeUInt32LE(csize, 20);
  h.writeUInt32LE(usize, 24);
  h.writeUInt16LE(name.length, 28);
  h.writeUInt32LE(0o100644 * 0x10000, 38);
  name.copy(h, 46);
  return h;
}

function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getFullYear());
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}
