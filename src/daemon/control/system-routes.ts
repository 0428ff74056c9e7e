// GET /healthz (public), GET /v1/info, GET /v1/replicas, GET /metrics.

import type { FastifyInstance } from 'fastify';
import type { DaemonContext } from '../context.js';

/** Registers the system routes. */
export function registerSystemRoutes(app: FastifyInstance, ctx: DaemonContext): void {
  app.get('/healthz', () => Promise.resolve({ status: ctx.draining ? 'draining' : 'ok' }));
  app.get('/v1/info', () =>
    Promise.resolve({
      daemonId: ctx.daemonId,
      version: '0.1.0',
      dataAddress: ctx.dataAddress,
      shmDir: ctx.config.shmDir,
      memoryBudget: ctx.config.memoryBudget,
      memoryUsed: ctx.views.cache.usedBytes,
      importRoots: ctx.config.importRoots,
    }),
  );
  app.get('/v1/replicas', () =>
    Promise.resolve({
      replicas: ctx.views.cache
        .list()
        .map((r) => ({ artifactId: r.artifactId, viewId: r.viewId ?? null, tier: r.tier, bytes: r.bytes, readers: r.refs })),
    }),
  );
  app.get('/metrics', async (_req, reply) => {
    const text = await ctx.metrics.registry.metrics();
    await reply.header('content-type', ctx.metrics.registry.contentType).send(text);
  });
}
