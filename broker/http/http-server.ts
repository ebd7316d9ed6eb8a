/**
 * The broker's HTTP side on `system.dashboardHttpPort` (0 = any free port), bound to the broker's bindHost:
 * MetaQ's HTTP routes (metaq-routes.ts), the JSON API under /api (api-routes.ts, message-routes.ts), Prometheus
 * `/metrics` (metrics.ts) and the dashboard page (dashboard/). A port already in use fails the start with a
 * ConfigError naming it. Close answers parked gets at once, then waits for the requests in flight.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { ConfigError } from '../../sdk/errors.js';
import type { BrokerRegistry } from '../cluster/broker-registry.js';
import type { BrokerContext } from '../server/broker-context.js';
import { registerApiRoutes } from './api-routes.js';
import { registerHaRoutes } from './ha-routes.js';
import { ClusterView } from './cluster-view.js';
import { registerDashboard } from './dashboard/dashboard-routes.js';
import { HttpReplier, type GetAnswer } from './http-replier.js';
import { registerMessageRoutes } from './message-routes.js';
import { registerMetaqRoutes } from './metaq-routes.js';
import { createBrokerMetrics, type BrokerMetrics } from './metrics.js';
import { HttpError } from './params.js';

export interface HttpServerOptions {
  readonly ctx: BrokerContext;
  /** The broker's ZooKeeper registration once made; undefined in standalone mode. */
  readonly registry: () => BrokerRegistry | undefined;
  readonly logger: Logger;
}

/** What the route modules share. */
export interface HttpDeps {
  readonly ctx: BrokerContext;
  readonly logger: Logger;
  readonly cluster: ClusterView;
  readonly metrics: BrokerMetrics;
  /** The bound HTTP port. */
  readonly httpPort: () => number;
  /**
   * Runs one of the TCP get/offset handlers for an HTTP request and resolves with its answer. A get parked in a long
   * poll is released when the client goes away or the server closes.
   */
  serve(reply: FastifyReply, run: (replier: HttpReplier) => void): Promise<GetAnswer>;
}

export interface HttpServer {
  readonly port: number;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** Starts the HTTP server; rejects with a ConfigError when the port is taken. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { ctx, logger } = options;
  const sys = ctx.config.system;
  const parked = new Set<HttpReplier>();
  let port = 0;
  const cluster = new ClusterView({ config: ctx.config, registry: options.registry });
  const metrics = createBrokerMetrics({ ctx, cluster, logger });
  const deps: HttpDeps = {
    ctx, logger, cluster, metrics,
    httpPort: () => port,
    serve: async (reply, run) => {
      const replier = new HttpReplier(ctx);
      parked.add(replier);
      reply.raw.once('close', () => replier.release());
      try {
        run(replier);
      } catch (err) {
        logger.error({ err }, 'HTTP get handler failed');
        replier.replyResult(500, 0, `internal error: ${(err as Error).message}`);
      }
      try {
        return await replier.answer;
      } finally {
        parked.delete(replier);
      }
    },
  };

  // No request logging: scrapes and dashboard polls would flood the broker's log. Errors are logged by the handlers.
  const app = Fastify({ logger: false, bodyLimit: sys.maxMessageSize * 2 + 4096 });
  app.setNotFoundHandler((req, reply) => {
    const message = `no route ${req.method} ${req.url.split('?')[0]}`;
    if (req.url.startsWith('/api/')) return reply.code(404).send({ error: message });
    return reply.code(404).type('text/plain; charset=utf-8').send(message);
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err instanceof HttpError ? err.status
      : err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) logger.error({ err, url: req.url }, 'HTTP request failed');
    return reply.code(status).send({ error: err.message });
  });
  registerMetaqRoutes(app, deps);
  registerApiRoutes(app, deps);
  registerHaRoutes(app, deps);
  registerMessageRoutes(app, deps);
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.render()));
  registerDashboard(app);

  try {
    await app.listen({ host: sys.bindHost, port: sys.dashboardHttpPort });
  } catch (err) {
    metrics.close();
    await app.close().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new ConfigError(`dashboardHttpPort ${sys.dashboardHttpPort} cannot be bound on ${sys.bindHost} ` +
        `(${code}): choose a free port with system.dashboardHttpPort (0 picks any)`);
    }
    throw err;
  }
  const addr = app.server.address();
  port = addr !== null && typeof addr === 'object' ? addr.port : sys.dashboardHttpPort;
  logger.info({ httpPort: port }, 'HTTP server listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    app,
    close: () => {
      closing ??= (async () => {
        for (const r of [...parked]) r.release();
        await app.close();
        metrics.close();
      })();
      return closing;
    },
  };
}
