/**
 * The dashboard's routes: `GET /` (the page) and its assets, including the chart library served straight from
 * node_modules so that the page works with no internet access. The page reads only the JSON API under /api.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));
const requireFromHere = createRequire(import.meta.url);

interface Asset {
  /** URL path under which the asset is served. */
  readonly route: string;
  /** Resolves the file on disk (late, so a missing library fails the request, not the broker's start). */
  readonly file: () => string;
  readonly type: string;
}

const ASSETS: readonly Asset[] = [
  { route: '/', file: () => `${PUBLIC_DIR}index.html`, type: 'text/html; charset=utf-8' },
  { route: '/dashboard/dashboard.css', file: () => `${PUBLIC_DIR}dashboard.css`, type: 'text/css; charset=utf-8' },
  { route: '/dashboard/dashboard.js', file: () => `${PUBLIC_DIR}dashboard.js`, type: 'text/javascript; charset=utf-8' },
  { route: '/dashboard/render.js', file: () => `${PUBLIC_DIR}render.js`, type: 'text/javascript; charset=utf-8' },
  { route: '/dashboard/rates.js', file: () => `${PUBLIC_DIR}rates.js`, type: 'text/javascript; charset=utf-8' },
  {
    route: '/dashboard/vendor/uplot.js',
    file: () => requireFromHere.resolve('uplot/dist/uPlot.esm.js'),
    type: 'text/javascript; charset=utf-8',
  },
  {
    route: '/dashboard/vendor/uplot.css',
    file: () => requireFromHere.resolve('uplot/dist/uPlot.min.css'),
    type: 'text/css; charset=utf-8',
  },
];

/** Registers `GET /` and the dashboard's static assets on `app`. Files are read once, on first request. */
export function registerDashboard(app: FastifyInstance): void {
  for (const asset of ASSETS) {
    let cached: Promise<Buffer> | undefined;
    app.get(asset.route, async (_request, reply: FastifyReply) => {
      cached ??= readFile(asset.file()).catch((error: unknown) => {
        cached = undefined; // a later request retries (e.g. the library was installed meanwhile)
        throw error;
      });
      const body = await cached;
      return reply
        .type(asset.type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .send(body);
    });
  }
}
