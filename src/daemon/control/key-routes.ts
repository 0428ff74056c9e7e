// GET /v1/keys, GET /v1/keys/:key, PUT /v1/keys/:key {artifactId, expectedVersion?}, DELETE /v1/keys/:key.

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { tcError } from '../../core/errors.js';
import { keyProblem, validateKey } from '../../core/keys.js';
import type { DaemonContext } from '../context.js';
import { parseBody } from './parse-body.js';

const bindBody = z.object({ artifactId: z.string().min(1), expectedVersion: z.number().int().positive().nullable().optional() }).strict();

/** Registers the key routes. */
export function registerKeyRoutes(app: FastifyInstance, ctx: DaemonContext): void {
  app.get('/v1/keys', async () => ({ keys: await ctx.catalog.listKeys() }));
  app.get<{ Params: { key: string } }>('/v1/keys/:key', async (req) => {
    const b = await ctx.catalog.resolveKey(validateKey(req.params.key));
    if (b === undefined) throw tcError('TC_ERR_NOT_FOUND', `no key '${req.params.key}'`, { details: { key: req.params.key } });
    return b;
  });
  app.put<{ Params: { key: string } }>('/v1/keys/:key', async (req) => {
    validateKey(req.params.key);
    const body = parseBody(bindBody, req.body);
    return ctx.catalog.bindKey(req.params.key, body.artifactId, body.expectedVersion);
  });
  app.delete<{ Params: { key: string }; Querystring: { expectedVersion?: string } }>('/v1/keys/:key', async (req) => {
    const v = req.query.expectedVersion;
    // A key bound before the grammar existed may still be deleted; any other invalid key is refused.
    if (keyProblem(req.params.key) !== undefined && (await ctx.catalog.resolveKey(req.params.key)) === undefined)
      validateKey(req.params.key);
    const deleted = await ctx.catalog.deleteKey(req.params.key, v === undefined ? undefined : Number(v));
    if (!deleted) throw tcError('TC_ERR_NOT_FOUND', `no key '${req.params.key}'`);
    return { deleted: true };
  });
}
