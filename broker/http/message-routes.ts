/**
 * Producing and browsing through the JSON API:
 *
 * - `POST /api/topics/:topic/messages` with `{ value, encoding?: "utf8"|"base64", partition?, attribute? }` →
 *   `{ id, partition, offset }` once stored per the flush policy (the TCP put's code: appendPut).
 * - `GET /api/topics/:topic/messages?partition=&offset=&maxBytes=&limit=&encoding=` → `{ messages: [{ offset,
 *   nextOffset, id, attribute, value }], nextOffset }`, read through the TCP get's code without a long poll. At the
 *   end of the log the list is empty and nextOffset is the offset asked; below the first segment (retention ran) it
 *   is empty and nextOffset is where the log now starts. A message larger than maxBytes is returned whole.
 *
 * Ids are decimal strings (64-bit). Errors: 400 naming the field, 404 unknown topic, 413 message over
 * maxMessageSize, 403 when this broker takes no puts (an async slave), 500 store failure.
 */
import type { FastifyInstance } from 'fastify';
import { CorruptRecordError } from '../../sdk/errors.js';
import { NO_CHECKSUM, type GetRequest } from '../../sdk/protocol/commands.js';
import { decodeMessageSet, encodePayload, RECORD_HEADER_SIZE } from '../../sdk/protocol/record.js';
import type { TopicConfig } from '../config/broker-config.js';
import { handleGet } from '../server/fetch-handler.js';
import type { GetAnswer } from './http-replier.js';
import type { HttpDeps } from './http-server.js';
import { HttpError, intField, type Query } from './params.js';
import { storePut } from './stored-put.js';

const ENCODINGS = ['utf8', 'base64'] as const;
type Encoding = (typeof ENCODINGS)[number];
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DEFAULT_MAX_BYTES = 64 * 1024;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

function encodingOf(v: unknown, where: string): Encoding {
  if (v === undefined || v === '') return 'utf8';
  if (typeof v === 'string' && (ENCODINGS as readonly string[]).includes(v)) return v as Encoding;
  throw new HttpError(400, `${where} encoding must be "utf8" or "base64", got ${JSON.stringify(v)}`);
}

function checkPartition(tc: TopicConfig, partition: number, topic: string): void {
  if (partition >= tc.numPartitions) {
    throw new HttpError(400, `field partition must be in 0..${tc.numPartitions - 1} for topic ${topic}, got ${partition}`);
  }
}

export function registerMessageRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const { ctx } = deps;
  const { store } = ctx;
  const sys = ctx.config.system;

  const topicOf = (params: unknown): { topic: string; tc: TopicConfig } => {
    const { topic } = params as { topic: string };
    const tc = store.topicConfig(topic);
    if (tc === undefined) throw new HttpError(404, `unknown topic ${JSON.stringify(topic)}: no [topic=...] section accepts it`);
    return { topic, tc };
  };

  app.post('/api/topics/:topic/messages', async (req) => {
    const { topic, tc } = topicOf(req.params);
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'body must be a JSON object { value, encoding?, partition?, attribute? }');
    }
    const b = body as Record<string, unknown>;
    if (typeof b.value !== 'string') throw new HttpError(400, 'field value must be a string');
    const encoding = encodingOf(b.encoding, 'field');
    if (encoding === 'base64' && !BASE64.test(b.value)) throw new HttpError(400, 'field value is not valid base64');
    let partition = -1;
    if (b.partition !== undefined && b.partition !== null) {
      if (typeof b.partition !== 'number' || !Number.isInteger(b.partition) || b.partition < 0) {
        throw new HttpError(400, `field partition must be a non-negative integer, got ${JSON.stringify(b.partition)}`);
      }
      partition = b.partition;
      checkPartition(tc, partition, topic);
    }
    if (b.attribute !== undefined && b.attribute !== null && typeof b.attribute !== 'string') {
      throw new HttpError(400, 'field attribute must be a string');
    }
    const { data, flag } = encodePayload(Buffer.from(b.value, encoding), typeof b.attribute === 'string' ? b.attribute : null);
    if (data.length > sys.maxMessageSize) {
      throw new HttpError(413,
        `message of ${data.length} bytes (attribute included) exceeds maxMessageSize ${sys.maxMessageSize}`);
    }
    const r = await storePut(ctx, topic, partition, flag, data, NO_CHECKSUM);
    if (!r.ok) throw new HttpError(r.code, `put to ${topic}-${r.partition} failed: ${r.error}`);
    return { id: r.id, partition: r.partition, offset: r.offset };
  });

  app.get('/api/topics/:topic/messages', async (req, reply) => {
    const { topic, tc } = topicOf(req.params);
    const q = req.query as Query;
    const partition = intField(q, 'partition', 0, 2 ** 31 - 1, 0);
    checkPartition(tc, partition, topic);
    const offset = intField(q, 'offset', 0, Number.MAX_SAFE_INTEGER, store.get(topic, partition)?.startOffset ?? 0);
    const maxBytes = Math.min(intField(q, 'maxBytes', 1, 2 ** 31 - 1, DEFAULT_MAX_BYTES), sys.maxTransferSize);
    const limit = intField(q, 'limit', 1, MAX_LIMIT, DEFAULT_LIMIT);
    const encoding = encodingOf(q.encoding, 'query field');
    const fetch = (maxSize: number): Promise<GetAnswer> => {
      const request: GetRequest = { type: 'get', topic, group: 'metaq-http-api', partition, offset, maxSize, opaque: 0 };
      return deps.serve(reply, (replier) => handleGet(replier, request, false));
    };
    let answer = await fetch(maxBytes);
    if (answer.kind === 'value' && answer.data.length >= RECORD_HEADER_SIZE) {
      // The first record does not fit in maxBytes: fetch it whole.
      const need = RECORD_HEADER_SIZE + answer.data.readInt32BE(0);
      if (need > answer.data.length && need <= sys.maxTransferSize) answer = await fetch(need);
    }
    if (answer.kind === 'result') {
      if (answer.code === 301) return { messages: [], nextOffset: Number(answer.body) };
      if (answer.code === 404 && answer.body.startsWith('Could not find message')) return { messages: [], nextOffset: offset };
      throw new HttpError(answer.code === 200 ? 500 : answer.code, answer.body);
    }
    let decoded;
    try {
      decoded = decodeMessageSet(answer.data, { baseOffset: offset, topic, partition, maxMessageSize: sys.maxMessageSize });
    } catch (e) {
      if (e instanceof CorruptRecordError) {
        throw new HttpError(400, `field offset ${offset} is not the start of a record of ${topic}-${partition} (${e.message})`);
      }
      throw e;
    }
    const messages = decoded.messages.slice(0, limit).map((m) => ({
      offset: m.offset,
      nextOffset: m.nextOffset,
      id: m.id.toString(),
      attribute: m.attribute,
      value: m.payload.toString(encoding),
    }));
    return { messages, nextOffset: messages.at(-1)?.nextOffset ?? offset };
  });
}
