// POST /v1/pushes {key | artifactId, url, chunkBytes?, concurrency?}: write an artifact to a connector as a model directory (kept
// files, shards, the index last), with a progress stream on request. POST /v1/artifacts/:id/verify: hash
// an artifact in full (a lazy one streamed from its connector) and, for a lazy one, record its content id.

import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import type { Logger } from '../../core/logger.js';
import { parseBody } from '../../protocol/http/parse.js';
import { pushRequest, type PushResponse } from '../../protocol/http/pushes.js';
import type { VerifyResponse } from '../../protocol/http/artifacts.js';
import type { ArtifactStore } from '../../store/artifact-store.js';
import { pushArtifact } from '../../store/push-artifact.js';
import { tuningOptions as tuningOf } from '../../store/connector-access.js';
import { verifyArtifact } from '../../store/verify-artifact.js';
import { refuseWhileDraining, type Lifecycle } from './lifecycle.js';
import { answerWithProgress } from './progress-answer.js';

/** What the push and verify routes use. */
export interface PushRoutesOptions {
  readonly catalog: Catalog;
  readonly store: ArtifactStore;
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
}

/** The push and verify routes, as a fastify plugin. */
export const pushRoutes: FastifyPluginAsync<PushRoutesOptions> = (app, { catalog, store, lifecycle, log }) => {
  app.post('/v1/pushes', async (req, reply) => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(pushRequest, req.body, 'push request');
    let artifactId = body.artifactId;
    if (body.key !== undefined) {
      const binding = await catalog.resolveKey(validateKey(body.key));
      if (binding === undefined) throw tcError('TC_ERR_NOT_FOUND', `no key '${body.key}'`, { details: { key: body.key } });
      artifactId = binding.artifactId;
    }
    // Opened before the answer starts: an artifact this daemon does not hold is a plain 404.
    const artifact = await store.open(artifactId!);
    return answerWithProgress(req, reply, log, (onProgress, signal): Promise<PushResponse> =>
      pushArtifact(artifact, body.url, { roots: store.importRoots, log, onProgress, signal, tuning: tuningOf(body) }),
    );
  });
  app.post<{ Params: { id: string } }>('/v1/artifacts/:id/verify', async (req, reply) => {
    refuseWhileDraining(lifecycle);
    const artifact = await store.open(req.params.id);
    return answerWithProgress(req, reply, log, (onProgress): Promise<VerifyResponse> => verifyArtifact(artifact, onProgress));
  });
  return Promise.resolve();
};
