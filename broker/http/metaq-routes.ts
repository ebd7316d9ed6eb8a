/**
 * MetaQ 1.4's HTTP routes (its `jettyBroker` plugin; the `<brokerId>` path segment is there for HTTP load
 * balancers and is ignored):
 *
 * - `POST /put/<brokerId>?topic=&partition=&flag=&length=[&checksum=]`, body = the encoded payload (attribute part
 *   + data, as a TCP put's body, any content type) → `200 <msgId> <partition> <offset>` once stored per the flush
 *   policy, or `500 Put message to [broker '...'] [partition '...'] failed.Detail:...` as the TCP put (403 when
 *   this broker takes no puts, e.g. an async slave).
 * - `GET /get/<brokerId>?topic=&partition=&group=&offset=&maxsize=` → 200 with the raw message-set bytes, or the
 *   TCP get's code and text (301 with the offset to move to, 400, 404; a get at the end of the log long-polls as
 *   over TCP, except for the group `Just_for_Browser`).
 * - `GET /offset/<brokerId>?topic=&partition=&group=&offset=` → 200 with the nearest offset, or 404.
 *
 * The requests go through the TCP handlers' own code (appendPut, handleGet, handleOffset). A malformed field is a
 * 400 naming it. MetaQ's code table has no 413: a body over maxMessageSize is a 500 with the TCP put's text.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NO_CHECKSUM, MAX_OFFSET, type GetRequest, type OffsetRequest } from '../../sdk/protocol/commands.js';
import { putFailure } from '../server/connection.js';
import { handleGet, handleOffset } from '../server/fetch-handler.js';
import type { HttpDeps } from './http-server.js';
import { HttpError, intField, presentField, stringField, type Query } from './params.js';
import { storePut } from './stored-put.js';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const TEXT = 'text/plain; charset=utf-8';
const EMPTY = Buffer.alloc(0);

/** Registers /put, /get and /offset (each with or without the `/<brokerId>` segment) in their own scope. */
export function registerMetaqRoutes(app: FastifyInstance, deps: HttpDeps): void {
  void app.register(async (scope) => {
    const maxMessageSize = deps.ctx.config.system.maxMessageSize;
    // A put body is raw bytes whatever the client calls it (curl --data-binary says x-www-form-urlencoded).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxMessageSize }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((err: FastifyError, req, reply) => metaqError(deps, err, req, reply));
    for (const url of ['/put', '/put/:brokerId']) scope.post(url, (req, reply) => put(deps, req, reply));
    for (const url of ['/get', '/get/:brokerId']) scope.get(url, (req, reply) => get(deps, req, reply));
    for (const url of ['/offset', '/offset/:brokerId']) scope.get(url, (req, reply) => offset(deps, req, reply));
  });
}

async function put(deps: HttpDeps, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { ctx } = deps;
  const q = req.query as Query;
  const topic = stringField(q, 'topic');
  const partition = intField(q, 'partition', -1, INT32_MAX);
  const flag = intField(q, 'flag', INT32_MIN, INT32_MAX);
  const length = intField(q, 'length', 0, INT32_MAX);
  const checksum = intField(q, 'checksum', INT32_MIN, INT32_MAX, NO_CHECKSUM);
  // A body over maxMessageSize never gets here: the content parser's bodyLimit refuses it (see metaqError).
  const body = Buffer.isBuffer(req.body) ? req.body : EMPTY;
  if (length !== body.length) throw new HttpError(400, `field length is ${length} but the body has ${body.length} bytes`);
  const r = await storePut(ctx, topic, partition, flag, body, checksum);
  if (!r.ok) return text(reply, r.code, putFailure(ctx, topic, r.partition, r.error));
  return text(reply, 200, `${r.id} ${r.partition} ${r.offset}`);
}

/** The partition and offset fields a get and an offset request share. */
function position(q: Query): { topic: string; partition: number; group: string; offset: number } {
  return {
    topic: stringField(q, 'topic'),
    partition: intField(q, 'partition', INT32_MIN, INT32_MAX),
    group: presentField(q, 'group'),
    offset: intField(q, 'offset', 0, MAX_OFFSET),
  };
}

async function get(deps: HttpDeps, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const q = req.query as Query;
  const request: GetRequest = {
    type: 'get', ...position(q), maxSize: intField(q, 'maxsize', INT32_MIN, INT32_MAX), opaque: 0,
  };
  const answer = await deps.serve(reply, (replier) => handleGet(replier, request));
  if (answer.kind === 'value') return reply.code(200).type('application/octet-stream').send(answer.data);
  return text(reply, answer.code, answer.body);
}

async function offset(deps: HttpDeps, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const q = req.query as Query;
  const request: OffsetRequest = { type: 'offset', ...position(q), opaque: 0 };
  const answer = await deps.serve(reply, (replier) => handleOffset(replier, request));
  return answer.kind === 'value' ? text(reply, 500, 'unexpected data answer') : text(reply, answer.code, answer.body);
}

function text(reply: FastifyReply, code: number, body: string): FastifyReply {
  return reply.code(code).type(TEXT).send(body);
}

/** Errors of these routes as MetaQ answers them: a status and a line of text. */
function metaqError(deps: HttpDeps, err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof HttpError) return text(reply, err.status, err.message);
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const q = req.query as Query;
    const topic = typeof q.topic === 'string' ? q.topic : '';
    const partition = typeof q.partition === 'string' ? Number(q.partition) : -1;
    deps.ctx.stats.putFailed++;
    return text(reply, 500, putFailure(deps.ctx, topic, partition,
      `message of more than ${deps.ctx.config.system.maxMessageSize} bytes exceeds maxMessageSize`));
  }
  const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
  if (status >= 500) deps.logger.error({ err, url: req.url }, 'HTTP request failed');
  return text(reply, status, err.message);
}
