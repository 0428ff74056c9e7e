// GET /v1/keys, GET /v1/keys/:key, PUT /v1/keys/:key {artifactId, expectedVersion?}, DELETE /v1/keys/:key.

import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { tcError } from '../../core/errors.js';
import { keyProblem, validateKey } from '../../core/keys.js';
import { bindKeyRequest, type KeyBindingInfo, type KeyList } from '../../protocol/http/keys.js';
import { parseBody } from '../../protocol/http/parse.js';

/** What the key routes use. */
export interface KeyRoutesOptions {
  readonly catalog: Catalog;
}

/** The key routes, as a fastify plugin. */
export const keyRoutes: FastifyPluginAsync<KeyRoutesOptions> = (app, { catalog }) => {
  app.get('/v1/keys', async (): Promise<KeyList> => ({ keys: await catalog.listKeys() }));
  app.get<{ Params: { key: string } }>('/v1/keys/:key', async (req): Promise<KeyBindingInfo> => {
    const b = await catalog.resolveKey(validateKey(req.params.key));
    if (b === undefined) throw tcError('TC_ERR_NOT_FOUND', `no key '${req.params.key}'`, { details: { key: req.params.key } });
    return b;
  });
  app.put<{ Params: { key: string } }>('/v1/keys/:key', async (req): Promise<KeyBindingInfo> => {
    validateKey(req.params.key);
    const body = parseBody(bindKeyRequest, req.body);
    return catalog.bindKey(req.params.key, body.artifactId, body.expectedVersion);
  });
  app.delete<{ Params: { key: string }; Querystring: { expectedVersion?: string } }>('/v1/keys/:key', async (req) => {
    const v = req.query.expectedVersion;
    // A key bound before the grammar existed may still be deleted; any other invalid key is refused.
    if (keyProblem(req.params.key) !== undefined && (await catalog.resolveKey(req.params.key)) === undefined) validateKey(req.params.key);
    const deleted = await catalog.deleteKey(req.params.key, v === undefined ? undefined : Number(v));
    if (!deleted) throw tcError('TC_ERR_NOT_FOUND', `no key '${req.params.key}'`);
    return { deleted: true };
  });
  return Promise.resolve();
};
