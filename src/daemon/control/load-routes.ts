// POST /v1/shm-leases {artifactId, view, viewId}: materialize a view into shared memory and lease it.
// DELETE /v1/shm-leases/:id: release it. (Loads over TCP go through the data plane.)

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { performance } from 'node:perf_hooks';
import { tcError } from '../../core/errors.js';
import { parseViewJson } from '../../layout/view.js';
import type { DaemonContext } from '../context.js';
import { parseBody } from './parse-body.js';

const leaseBody = z
  .object({
    artifactId: z.string().min(1),
    view: z.record(z.string(), z.unknown()).nullable(),
    viewId: z.string().nullable(),
    /** How long the daemon may wait for room or a build (ms). */
    timeoutMs: z
      .number()
      .int()
      .positive()
      .max(2 ** 31 - 1)
      .optional(),
  })
  .strict();

/** How long a lease request without `timeoutMs` may wait for room or a build. */
const DEFAULT_LEASE_WAIT_MS = 30_000;

/** Registers the shared-memory lease routes. */
export function registerLoadRoutes(app: FastifyInstance, ctx: DaemonContext): void {
  app.post('/v1/shm-leases', async (req) => {
    if (ctx.draining) throw tcError('TC_ERR_SHUTTING_DOWN', 'the daemon is shutting down');
    const body = parseBody(leaseBody, req.body);
    const t0 = performance.now();
    const deadline = Date.now() + (body.timeoutMs ?? DEFAULT_LEASE_WAIT_MS);
    const spec = body.view === null ? undefined : parseViewJson(JSON.stringify(body.view), 'view');
    try {
      const rv = await ctx.views.resolve(body.artifactId, spec, body.viewId);
      const lease = await ctx.leases.create(rv, deadline);
      ctx.metrics.loads.inc({ route: 'local', transport: 'shm', source: lease.replicaHit ? 'replica_hit' : 'materialized', outcome: 'ok' });
      ctx.metrics.bytesDelivered.inc({ transport: 'shm' }, lease.bytes);
      ctx.metrics.loadSeconds.observe({ transport: 'shm' }, (performance.now() - t0) / 1000);
      return {
        ...lease,
        route: 'local',
        source: lease.replicaHit ? 'replica_hit' : 'materialized',
        viewId: rv.view.viewId ?? null,
        totalBytes: rv.program.totalBytes,
      };
    } catch (error) {
      ctx.metrics.loads.inc({ route: 'local', transport: 'shm', source: 'materialized', outcome: 'error' });
      throw error;
    }
  });
  // ?discard=1: the client found the file's bytes changed (failed checksum); drop the replica.
  app.delete<{ Params: { id: string }; Querystring: { discard?: string } }>('/v1/shm-leases/:id', (req) => {
    ctx.leases.release(req.params.id, req.query.discard === '1');
    return Promise.resolve({ released: true });
  });
}
