// GET /v1/cluster: the daemons of the cluster (alive or not, by heartbeat and state) and, per artifact,
// its keys and replicas by daemon and kind, as the catalog lists them.

import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import type { ClusterInfo } from '../../protocol/http/cluster.js';

/** What the cluster route uses. */
export interface ClusterRoutesOptions {
  readonly catalog: Catalog;
  readonly daemonId: string;
  /** The catalog URL without credentials. */
  readonly catalogUrl: string;
  readonly catalogStatus: () => 'ok' | 'unavailable';
  readonly daemonTtlMs: number;
}

/** The cluster route, as a fastify plugin. */
export const clusterRoutes: FastifyPluginAsync<ClusterRoutesOptions> = (app, o) => {
  app.get('/v1/cluster', async (): Promise<ClusterInfo> => {
    const [daemons, artifacts, keys, replicas] = await Promise.all([
      o.catalog.listDaemons(),
      o.catalog.listArtifacts(),
      o.catalog.listKeys(),
      o.catalog.listReplicas(),
    ]);
    const now = Date.now();
    return {
      self: o.daemonId,
      catalog: { url: o.catalogUrl, status: o.catalogStatus() },
      daemonTtlMs: o.daemonTtlMs,
      daemons: daemons.map((d) => ({
        daemonId: d.daemonId,
        controlUrl: d.controlUrl,
        dataAddress: d.dataAddress,
        advertiseHost: d.advertiseHost,
        state: d.state,
        alive: d.state === 'up' && now - d.heartbeatAt <= o.daemonTtlMs,
        heartbeatAt: d.heartbeatAt,
      })),
      artifacts: artifacts.map((a) => ({
        artifactId: a.artifactId,
        keys: keys.filter((k) => k.artifactId === a.artifactId).map((k) => k.key),
        replicas: replicas
          .filter((r) => r.artifactId === a.artifactId)
          .map((r) => ({
            daemonId: r.daemonId,
            kind: r.tier === 'export' ? 'export' : r.viewId === undefined ? 'canonical' : 'view',
            viewId: r.viewId ?? null,
            tier: r.tier,
            bytes: r.bytes,
            state: r.state,
            activeFetches: r.activeFetches,
          })),
      })),
    };
  });
  return Promise.resolve();
};

/** A catalog URL with any password replaced by `***` (safe to print). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
