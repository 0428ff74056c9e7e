// GET /v1/artifacts, GET /v1/artifacts/:id (with its canonical index), GET /v1/artifacts/:id/placement,
// GET /v1/artifacts/:id/files/:name.

import { createReadStream } from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { tcError } from '../../core/errors.js';
import type { ArtifactList, LazyInfo, Placement } from '../../protocol/http/artifacts.js';
import type { ArtifactStore } from '../../store/artifact-store.js';
import type { ViewService } from '../../store/view-service.js';

/** What the artifact routes use. */
export interface ArtifactRoutesOptions {
  readonly catalog: Catalog;
  readonly store: ArtifactStore;
  /** Files of artifacts other daemons store come through the view service (fetched from them). */
  readonly views: ViewService;
}

/** The artifact routes, as a fastify plugin. */
export const artifactRoutes: FastifyPluginAsync<ArtifactRoutesOptions> = (app, { catalog, store, views }) => {
  app.get('/v1/artifacts', async (): Promise<ArtifactList> => {
    const [artifacts, keys, replicas] = await Promise.all([catalog.listArtifacts(), catalog.listKeys(), catalog.listReplicas()]);
    // Lazy artifacts this daemon keeps: where their bytes are (redacted) and their verification.
    const lazy = new Map<string, LazyInfo>();
    for (const a of artifacts) {
      const r = await store.lazyRecord(a.artifactId);
      if (r !== undefined) {
        lazy.set(a.artifactId, {
          source: r.source,
          objects: r.objects,
          contentId: r.verified?.contentId ?? null,
          verifiedAt: r.verified?.verifiedAt ?? null,
        });
      }
    }
    return {
      artifacts: artifacts.map((a) => ({
        artifactId: a.artifactId,
        totalBytes: a.totalBytes,
        tensorCount: a.tensorCount,
        files: a.files,
        createdAt: a.createdAt,
        keys: keys.filter((k) => k.artifactId === a.artifactId).map((k) => ({ key: k.key, version: k.version })),
        replicas: replicas
          .filter((r) => r.artifactId === a.artifactId)
          .map((r) => ({ viewId: r.viewId ?? null, tier: r.tier, bytes: r.bytes, daemonId: r.daemonId })),
        ...(lazy.has(a.artifactId) ? { lazy: lazy.get(a.artifactId)! } : {}),
      })),
    };
  });
  app.get<{ Params: { id: string } }>('/v1/artifacts/:id', async (req, reply) => {
    const a = await catalog.getArtifact(req.params.id);
    if (a === undefined) throw tcError('TC_ERR_NOT_FOUND', `no artifact ${req.params.id}`, { details: { artifactId: req.params.id } });
    // The index is stored as JSON text; splice it in rather than parse and re-serialize a large index
    // (the body is an ArtifactDetail).
    const head = JSON.stringify({
      artifactId: a.artifactId,
      indexHash: a.indexHash,
      dataHash: a.dataHash,
      totalBytes: a.totalBytes,
      tensorCount: a.tensorCount,
      files: a.files,
    });
    await reply.header('content-type', 'application/json').send(`${head.slice(0, -1)},"index":${a.indexJson}}`);
  });
  // Where the artifact's immutable files live on this host, for same-host clients that read them in place
  // (transport 'files'): folder, shard files, and each tensor's shard and file position.
  app.get<{ Params: { id: string } }>('/v1/artifacts/:id/placement', async (req): Promise<Placement> => {
    const a = await store.open(req.params.id);
    if (a.lazy !== undefined) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `artifact ${a.artifactId} is lazy (its bytes are in ${a.lazy.source}): it has no files to read in place; load it over tcp or shm`,
        {
          details: { artifactId: a.artifactId, reason: 'lazy_artifact' },
        },
      );
    }
    return {
      artifactId: a.artifactId,
      route: 'local',
      dir: a.dir,
      shards: a.index.shards.map((s) => ({ file: s.file, bytes: s.fileByteLength })),
      tensors: a.index.tensors.map((t) => [t.name, t.shard, t.filePosition] as const),
    };
  });
  app.get<{ Params: { id: string; name: string } }>('/v1/artifacts/:id/files/:name', async (req, reply) => {
    const { local } = await views.artifact(req.params.id);
    if (local === undefined) {
      await reply.header('content-type', 'application/octet-stream').send(await views.file(req.params.id, req.params.name));
      return;
    }
    const path = await store.filePath(req.params.id, req.params.name);
    await reply.header('content-type', 'application/octet-stream').send(createReadStream(path));
  });
  return Promise.resolve();
};
