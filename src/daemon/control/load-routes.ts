// POST /v1/shm-leases {artifactId, view, viewId, timeoutMs?}: materialize a planned view into shared memory
// and lease it: one JSON answer, or, with `accept: application/x-ndjson`, a progressive answer whose first
// line hands out the lease as soon as the file exists and whose next lines announce chunks as they are
// written (the client reads them while the rest is built). DELETE /v1/shm-leases/:id[?discard=1]: release it
// (discard: the client found the file's bytes changed, drop the replica). POST /v1/shm-leases/:id/renew:
// extend it by the lease TTL (a client keeping the file mapped). (Loads over TCP go through the data plane.)

import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from '../../core/logger.js';
import type { RouteKind } from '../../protocol/route-kinds.js';
import { newFillContext } from '../../store/remote-views.js';
import { performance } from 'node:perf_hooks';
import { parseViewJson } from '../../layout/view.js';
import type { DaemonMetrics } from '../../metrics/metrics.js';
import { shmLeaseRequest, type ShmLeaseLine, type ShmLeaseResponse } from '../../protocol/http/loads.js';
import { NDJSON } from '../../protocol/http/progress.js';
import { parseBody } from '../../protocol/http/parse.js';
import type { ViewService } from '../../store/view-service.js';
import type { ShmLeaseProgress, ShmLeases } from '../shm-leases.js';
import { httpError } from '../../protocol/http/error-status.js';
import { refuseWhileDraining, type Lifecycle } from './lifecycle.js';
import { wantsProgress } from './progress-answer.js';

/** How long a lease request without `timeoutMs` may wait for room or a build. */
const DEFAULT_LEASE_WAIT_MS = 30_000;

/** What the lease routes use. */
export interface LeaseRoutesOptions {
  readonly views: ViewService;
  readonly leases: ShmLeases;
  readonly metrics: DaemonMetrics;
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
}

/** The shared-memory lease routes, as a fastify plugin. */
export const leaseRoutes: FastifyPluginAsync<LeaseRoutesOptions> = (app, { views, leases, metrics, lifecycle, log }) => {
  app.post('/v1/shm-leases', async (req, reply): Promise<ShmLeaseResponse | FastifyReply> => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(shmLeaseRequest, req.body);
    const t0 = performance.now();
    const deadline = Date.now() + (body.timeoutMs ?? DEFAULT_LEASE_WAIT_MS);
    const spec = body.view === null ? undefined : parseViewJson(JSON.stringify(body.view), 'view');
    const ctx = newFillContext();
    let route: RouteKind = 'local';
    // A progressive answer starts when the lease opens; until then (and for hits) it is one JSON answer.
    let stream: PassThrough | undefined;
    let openedLeaseId: string | undefined;
    const line = (value: ShmLeaseLine): void => void stream?.write(`${JSON.stringify(value)}\n`);
    const progress: ShmLeaseProgress | undefined = wantsProgress(req)
      ? {
          opened: (opening) => {
            openedLeaseId = opening.leaseId;
            stream = new PassThrough();
            void reply.code(200).header('content-type', NDJSON).header('cache-control', 'no-store').send(stream);
            line({ opened: opening });
          },
          ready: (firstChunk, crcs) => line({ ready: { firstChunk, crcs } }),
        }
      : undefined;
    // A client gone before its progressive answer ended: its lease goes (the build goes on for the next one).
    reply.raw.once('close', () => {
      if (openedLeaseId === undefined || reply.raw.writableFinished) return;
      try {
        leases.release(openedLeaseId);
      } catch {
        // released already
      }
    });
    try {
      const rv = await views.resolve(body.artifactId, spec, body.viewId);
      const lease = await leases.create(rv, deadline, ctx, progress);
      route = ctx.route ?? 'local';
      const source = lease.replicaHit ? 'replica_hit' : 'materialized';
      metrics.loads.inc({ route, transport: 'shm', source, outcome: 'ok' });
      metrics.bytesDelivered.inc({ transport: 'shm' }, lease.bytes);
      metrics.loadSeconds.observe({ transport: 'shm' }, (performance.now() - t0) / 1000);
      const result: ShmLeaseResponse = {
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
      if (stream === undefined) return result;
      line({ result });
      stream.end();
      return reply;
    } catch (error) {
      metrics.loads.inc({ route: ctx.route ?? route, transport: 'shm', source: 'materialized', outcome: 'error' });
      if (stream === undefined) throw error;
      const { status, body: errorBody } = httpError(error);
      if (status >= 500) log.error({ err: error, url: req.url }, 'control request failed');
      line(errorBody);
      stream.end();
      return reply;
    }
  });
  app.delete<{ Params: { id: string }; Querystring: { discard?: string } }>('/v1/shm-leases/:id', (req) => {
    leases.release(req.params.id, req.query.discard === '1');
    return Promise.resolve({ released: true });
  });
  app.post<{ Params: { id: string } }>('/v1/shm-leases/:id/renew', (req) => {
    const expiresAt = leases.renew(req.params.id);
    return Promise.resolve({ leaseId: req.params.id, expiresAt });
  });
  return Promise.resolve();
};
