// GET /healthz (public), GET /v1/info, GET /v1/replicas, GET /metrics.

import type { FastifyPluginAsync } from 'fastify';
import type { DaemonMetrics } from '../../metrics/metrics.js';
import type { DaemonInfo, HealthInfo, ReplicaList } from '../../protocol/http/system.js';
import type { ViewService } from '../../store/view-service.js';
import type { Lifecycle } from './lifecycle.js';

/** What the system routes use. */
export interface SystemRoutesOptions {
  readonly daemonId: string;
  readonly shmDir: string;
  readonly memoryBudget: number;
  readonly importRoots: readonly string[];
  readonly views: ViewService;
  readonly metrics: DaemonMetrics;
  readonly lifecycle: Lifecycle;
  readonly catalogStatus: () => 'ok' | 'unavailable';
}

/** The system routes, as a fastify plugin. */
export const systemRoutes: FastifyPluginAsync<SystemRoutesOptions> = (app, o) => {
  app.get('/healthz', (): Promise<HealthInfo> =>
    Promise.resolve({ status: o.lifecycle.draining ? 'draining' : 'ok', catalog: o.catalogStatus() }),
  );
  app.get('/v1/info', (): Promise<DaemonInfo> =>
    Promise.resolve({
      daemonId: o.daemonId,
      version: '0.1.0',
      dataAddress: o.lifecycle.dataAddress,
      shmDir: o.shmDir,
      memoryBudget: o.memoryBudget,
      memoryUsed: o.views.cache.usedBytes,
      importRoots: o.importRoots,
      handshakeUrl: o.lifecycle.handshakeUrl ?? null,
    }),
  );
  app.get('/v1/replicas', (): Promise<ReplicaList> =>
    Promise.resolve({
      replicas: o.views.cache
        .list()
        .map((r) => ({ artifactId: r.artifactId, viewId: r.viewId ?? null, tier: r.tier, bytes: r.bytes, readers: r.refs })),
    }),
  );
  app.get('/metrics', async (_req, reply) => {
    const text = await o.metrics.registry.metrics();
    await reply.header('content-type', o.metrics.registry.contentType).send(text);
  });
  return Promise.resolve();
};
