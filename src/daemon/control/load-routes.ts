// POST /v1/shm-leases {artifactId, view, viewId, timeoutMs?}: materialize a planned view into shared memory
// and lease it. DELETE /v1/shm-leases/:id[?discard=1]: release it (discard: the client found the file's
// bytes changed, drop the replica). (Loads over TCP go through the data plane.)

import type { FastifyPluginAsync } from 'fastify';
import type { RouteKind } from '../../protocol/route-kinds.js';
import { newFillContext } from '../../store/remote-views.js';
import { performance } from 'node:perf_hooks';
import { parseViewJson } from '../../layout/view.js';
import type { DaemonMetrics } from '../../metrics/metrics.js';
import { shmLeaseRequest, type ShmLeaseResponse } from '../../protocol/http/loads.js';
import { parseBody } from '../../protocol/http/parse.js';
import type { ViewService } from '../../store/view-service.js';
import type { ShmLeases } from '../shm-leases.js';
import { refuseWhileDraining, type Lifecycle } from './lifecycle.js';

/** How long a lease request without `timeoutMs` may wait for room or a build. */
const DEFAULT_LEASE_WAIT_MS = 30_000;

/** What the lease routes use. */
export interface LeaseRoutesOptions {
  readonly views: ViewService;
  readonly leases: ShmLeases;
  readonly metrics: DaemonMetrics;
  readonly lifecycle: Lifecycle;
}

/** The shared-memory lease routes, as a fastify plugin. */
export const leaseRoutes: FastifyPluginAsync<LeaseRoutesOptions> = (app, { views, leases, metrics, lifecycle }) => {
  app.post('/v1/shm-leases', async (req): Promise<ShmLeaseResponse> => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(shmLeaseRequest, req.body);
    const t0 = performance.now();
    const deadline = Date.now() + (body.timeoutMs ?? DEFAULT_LEASE_WAIT_MS);
    const spec = body.view === null ? undefined : parseViewJson(JSON.stringify(body.view), 'view');
    const ctx = newFillContext();
    let route: RouteKind = 'local';
    try {
      const rv = await views.resolve(body.artifactId, spec, body.viewId);
      const lease = await leases.create(rv, deadline, ctx);
      route = ctx.route ?? 'local';
      const source = lease.replicaHit ? 'replica_hit' : 'materialized';
      metrics.loads.inc({ route, transport: 'shm', source, outcome: 'ok' });
      metrics.bytesDelivered.inc({ transport: 'shm' }, lease.bytes);
      metrics.loadSeconds.observe({ transport: 'shm' }, (performance.now() - t0) / 1000);
      return {
        leaseId: lease.leaseId,
        path: lease.path,
        bytes: lease.bytes,
        expiresAt: lease.expiresAt,
        checksums: lease.checksums,
        route,
        source,
        viewId: rv.view.viewId ?? null,
        totalBytes: rv.program.totalBytes,
      };
    } catch (error) {
      metrics.loads.inc({ route: ctx.route ?? route, transport: 'shm', source: 'materialized', outcome: 'error' });
      throw error;
    }
  });
  app.delete<{ Params: { id: string }; Querystring: { discard?: string } }>('/v1/shm-leases/:id', (req) => {
    leases.release(req.params.id, req.query.discard === '1');
    return Promise.resolve({ released: true });
  });
  return Promise.resolve();
};
