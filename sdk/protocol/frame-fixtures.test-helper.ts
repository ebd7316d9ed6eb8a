/**
 * Loads the golden frames of test/fixtures/frames (read from disk: sdk code may not import test/).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DecodedRequest, Response } from './commands.js';

export interface FrameFixture {
  readonly name: string;
  readonly source: string;
  readonly direction: 'request' | 'response';
  readonly bytes: Buffer;
  /** Null: the bytes are an incomplete frame. */
  readonly decoded: DecodedRequest | Response | null;
  readonly encodes: 'yes' | 'legacy' | 'valueHeader' | 'no';
}

export interface RecordFixture {
  readonly name: string;
  readonly source: string;
  readonly bytes: Buffer;
  readonly expect: {
    readonly check: number | 'INCOMPLETE_HEADER' | 'INCOMPLETE_DATA' | 'BAD_CRC';
    readonly id?: string;
    readonly flag?: number;
    readonly attribute?: string | null;
    readonly payload?: string;
    readonly nextOffset?: number;
  };
}

const dir = fileURLToPath(new URL('../../test/fixtures/frames/', import.meta.url));

interface RawFrame {
  name: string; source: string; direction: 'request' | 'response'; hex: string; text: string;
  decoded: (Record<string, unknown> & { body?: string; msgId?: string }) | null;
  encodes: FrameFixture['encodes'];
}

export function loadFrameFixtures(): FrameFixture[] {
  const raw = JSON.parse(readFileSync(`${dir}frames.json`, 'utf8')) as RawFrame[];
  return raw.map((f) => {
    const bytes = Buffer.from(f.hex, 'hex');
    if (!bytes.equals(Buffer.from(f.text, 'utf8'))) throw new Error(`fixture ${f.name}: hex and text differ`);
    let decoded: FrameFixture['decoded'] = null;
    if (f.decoded !== null) {
      const d: Record<string, unknown> = { ...f.decoded };
      if (typeof f.decoded.body === 'string') d['body'] = Buffer.from(f.decoded.body, 'utf8');
      if (typeof f.decoded.msgId === 'string') d['msgId'] = BigInt(f.decoded.msgId);
      decoded = d as unknown as FrameFixture['decoded'];
    }
    return { name: f.name, source: f.source, direction: f.direction, bytes, decoded, encodes: f.encodes };
  });
}

export function loadRecordFixtures(): RecordFixture[] {
  const raw = JSON.parse(readFileSync(`${dir}records.json`, 'utf8')) as
    (Omit<RecordFixture, 'bytes'> & { hex: string })[];
  return raw.map((r) => ({ name: r.name, source: r.source, bytes: Buffer.from(r.hex, 'hex'), expect: r.expect }));
}
