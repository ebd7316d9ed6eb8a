/**
 * `POST /api/ha/promote`: failover, makes this slave the master of its brokerId (broker/ha/promotion.ts). 200 with
 * the promotion report; 409 when this broker is not a promotable slave (a master, standalone, or a slave whose
 * recovery cut data and has not caught up), with the reason as `{ "error": "..." }`.
 */
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from './http-server.js';
import { HttpError } from './params.js';

export function registerHaRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const { ctx } = deps;
  app.post('/api/ha/promote', async () => {
    if (ctx.promote === undefined) {
      throw new HttpError(409, `broker ${ctx.config.system.brokerId} is not a slave in cluster mode: nothing to promote`);
    }
    try {
      return await ctx.promote();
    } catch (err) {
      throw new HttpError(409, (err as Error).message);
    }
  });
}
