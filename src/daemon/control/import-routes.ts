// POST /v1/imports {path, key?}: import a model from this host (only under --import-root); {url, key?,
// lazy?, chunkBytes?, concurrency?}: pull a model from a connector (or register it lazily), with a progress stream on request.
// POST /v1/uploads, PUT /v1/uploads/:id/files/:name (raw bytes), POST /v1/uploads/:id/commit {key?},
// DELETE /v1/uploads/:id: upload a model's files, then store them as an artifact.

import type { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import { commitRequest, importRequest, type ImportResponse, type UploadCreated, type UploadedFile } from '../../protocol/http/imports.js';
import { parseBody } from '../../protocol/http/parse.js';
import type { Logger } from '../../core/logger.js';
import type { ArtifactStore, ImportResult } from '../../store/artifact-store.js';
import { tuningOptions } from '../../store/connector-access.js';
import { UploadSessions } from '../uploads.js';
import { refuseWhileDraining, type Lifecycle } from './lifecycle.js';
import { answerWithProgress } from './progress-answer.js';

/** What the import routes use. */
export interface ImportRoutesOptions {
  readonly daemonId: string;
  readonly importRoots: readonly string[];
  readonly catalog: Catalog;
  readonly store: ArtifactStore;
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
}

/** The import and upload routes, as a fastify plugin. */
export const importRoutes: FastifyPluginAsync<ImportRoutesOptions> = (app, o) => {
  const { catalog, store, lifecycle } = o;
  const uploads = new UploadSessions(store);
  app.addHook('onClose', () => uploads.close());
  const withKey = async (result: ImportResult & { lazy?: boolean }, key: string | undefined): Promise<ImportResponse> => {
    // A lazy artifact's bytes are not on this daemon's disk: no disk replica for others to fetch from.
    if (result.lazy !== true)
      await catalog.putReplica({
        artifactId: result.artifactId,
        viewId: undefined,
        daemonId: o.daemonId,
        tier: 'disk',
        bytes: result.totalBytes,
      });
    if (key === undefined) return result;
    const current = await catalog.resolveKey(key);
    const binding = current?.artifactId === result.artifactId ? current : await catalog.bindKey(key, result.artifactId);
    return { ...result, key: { key: binding.key, version: binding.version } };
  };

  app.post('/v1/imports', async (req, reply) => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(importRequest, req.body);
    if (body.key !== undefined) validateKey(body.key);
    if (body.url !== undefined) {
      const url = body.url;
      const lazy = body.lazy === true;
      return answerWithProgress(req, reply, o.log, async (onProgress, signal) =>
        withKey(await store.importUrl(url, { lazy, onProgress, signal, tuning: tuningOptions(body) }), body.key),
      );
    }
    return withKey(await store.importPath(body.path!, o.importRoots), body.key);
  });
  app.post('/v1/uploads', async (): Promise<UploadCreated> => {
    refuseWhileDraining(lifecycle);
    return { uploadId: await uploads.create() };
  });
  app.put<{ Params: { id: string; name: string } }>('/v1/uploads/:id/files/:name', async (req): Promise<UploadedFile> => {
    refuseWhileDraining(lifecycle);
    if (req.headers['content-type'] !== 'application/octet-stream') {
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'upload bodies must be sent as application/octet-stream');
    }
    return { bytes: await uploads.putFile(req.params.id, req.params.name, req.body as Readable) };
  });
  app.post<{ Params: { id: string } }>('/v1/uploads/:id/commit', async (req): Promise<ImportResponse> => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(commitRequest, req.body);
    if (body.key !== undefined) validateKey(body.key);
    return withKey(await uploads.commit(req.params.id), body.key);
  });
  app.delete<{ Params: { id: string } }>('/v1/uploads/:id', async (req) => {
    await uploads.abort(req.params.id);
    return { aborted: true };
  });
  return Promise.resolve();
};
