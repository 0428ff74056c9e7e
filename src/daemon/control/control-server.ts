// The control API: HTTP/1.1 + JSON on fastify. Every route but GET /healthz needs the bearer token
// (compared in constant time); errors carry the stable code (http-errors.ts maps categories to statuses).

import Fastify, { type FastifyInstance } from 'fastify';
import type { DaemonContext } from '../context.js';
import { tokenMatches } from '../token.js';
import { httpError } from './http-errors.js';
import { registerArtifactRoutes } from './artifact-routes.js';
import { registerImportRoutes } from './import-routes.js';
import { registerKeyRoutes } from './key-routes.js';
import { registerLoadRoutes } from './load-routes.js';
import { registerSystemRoutes } from './system-routes.js';
import { tcError } from '../../core/errors.js';
import { MAX_KEY_BYTES } from '../../core/keys.js';

/** Routes reachable without a token. */
const PUBLIC = new Set(['/healthz']);

/**
 * Builds the control API (not listening yet).
 *
 * @example const app = buildControlServer(ctx); await app.listen({ host: '127.0.0.1', port: 7070 });
 */
export function buildControlServer(ctx: DaemonContext): FastifyInstance {
  // maxParamLength (decoded characters): every valid key fits, and keys up to 4x the cap still reach the
  // routes, which answer with the rule broken instead of fastify's bare 414.
  const app = Fastify({
    logger: false,
    bodyLimit: 16 << 20,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: 4 * MAX_KEY_BYTES },
  });
  // Uploads arrive as raw streams; the route writes them to disk.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.addHook('onRequest', async (req, reply) => {
    if (PUBLIC.has(req.routeOptions.url ?? req.url)) return;
    const header = req.headers.authorization;
    const presented = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (!tokenMatches(presented, ctx.token)) {
      const { body } = httpError(tcError('TC_ERR_AUTH', presented === undefined ? 'missing bearer token' : 'wrong token'));
      await reply.code(401).header('www-authenticate', 'Bearer').send(body);
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpRequests.inc({ method: req.method, status: String(reply.statusCode) });
  });
  app.setErrorHandler(async (error, req, reply) => {
    const { status, body } = httpError(error);
    if (status >= 500) ctx.log.error({ err: error, url: req.url }, 'control request failed');
    await reply.code(status).send(body);
  });
  app.setNotFoundHandler(async (req, reply) => {
    // Unknown routes answer 401 without a valid token (the auth hook ran), 404 with one.
    await reply.code(404).send(httpError(tcError('TC_ERR_NOT_FOUND', `no route ${req.method} ${req.url}`)).body);
  });
  registerSystemRoutes(app, ctx);
  registerArtifactRoutes(app, ctx);
  registerKeyRoutes(app, ctx);
  registerImportRoutes(app, ctx);
  registerLoadRoutes(app, ctx);
  return app;
}
