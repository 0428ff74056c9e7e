// POST /v1/imports {path, key?}: import a model from this host (only under --import-root).
// POST /v1/uploads, PUT /v1/uploads/:id/files/:name (raw bytes), POST /v1/uploads/:id/commit {key?},
// DELETE /v1/uploads/:id: upload a model's files, then store them as an artifact.

import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import type { ImportResult } from '../../store/artifact-store.js';
import type { DaemonContext } from '../context.js';
import { UploadSessions } from '../uploads.js';
import { parseBody } from './parse-body.js';

const importBody = z.object({ path: z.string().min(1), key: z.string().min(1).optional() }).strict();
const commitBody = z.object({ key: z.string().min(1).optional() }).strict();

/** Registers the import and upload routes. */
export function registerImportRoutes(app: FastifyInstance, ctx: DaemonContext): void {
  const uploads = new UploadSessions(ctx.store);
  app.addHook('onClose', () => uploads.close());
  const notDraining = (): void => {
    if (ctx.draining) throw tcError('TC_ERR_SHUTTING_DOWN', 'the daemon is shutting down');
  };
  const withKey = async (result: ImportResult, key: string | undefined): Promise<object> => {
    await ctx.catalog.putReplica({
      artifactId: result.artifactId,
      viewId: undefined,
      daemonId: ctx.daemonId,
      tier: 'disk',
      bytes: result.totalBytes,
    });
    if (key === undefined) return result;
    const current = await ctx.catalog.resolveKey(key);
    const binding = current?.artifactId === result.artifactId ? current : await ctx.catalog.bindKey(key, result.artifactId);
    return { ...result, key: binding };
  };

  app.post('/v1/imports', async (req) => {
    notDraining();
    const body = parseBody(importBody, req.body);
    if (body.key !== undefined) validateKey(body.key);
    return withKey(await ctx.store.importPath(body.path, ctx.config.importRoots), body.key);
  });
  app.post('/v1/uploads', async () => {
    notDraining();
    return { uploadId: await uploads.create() };
  });
  app.put<{ Params: { id: string; name: string } }>('/v1/uploads/:id/files/:name', async (req) => {
    notDraining();
    if (req.headers['content-type'] !== 'application/octet-stream') {
      throw tcError('TC_ERR_INVALID_ARGUMENT', 'upload bodies must be sent as application/octet-stream');
    }
    return { bytes: await uploads.putFile(req.params.id, req.params.name, req.body as Readable) };
  });
  app.post<{ Params: { id: string } }>('/v1/uploads/:id/commit', async (req) => {
    notDraining();
    const body = parseBody(commitBody, req.body);
    if (body.key !== undefined) validateKey(body.key);
    return withKey(await uploads.commit(req.params.id), body.key);
  });
  app.delete<{ Params: { id: string } }>('/v1/uploads/:id', async (req) => {
    await uploads.abort(req.params.id);
    return { aborted: true };
  });
}
