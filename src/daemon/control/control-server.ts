// The control API: HTTP/1.1 + JSON on fastify. Every route but GET /healthz needs the bearer token
// (compared in constant time); errors carry the stable code (http-errors.ts maps categories to statuses).

import Fastify, { type FastifyInstance } from 'fastify';
import type { DaemonContext } from '../context.js';
import { tokenMatches } from '../token.js';
import { httpError } from './http-errors.js';
import { parseJsonBody } from './json-body.js';
import { closeIfBodyUnread } from './early-answer.js';
import { registerArtifactRoutes } from './artifact-routes.js';
import { registerImportRoutes } from './import-routes.js';
import { registerKeyRoutes } from './key-routes.js';
import { registerLoadRoutes } from './load-routes.js';
import { registerSystemRoutes } from './system-routes.js';
import { tcError } from '../../core/errors.js';

/** Routes reachable without a token. */
const PUBLIC = new Set(['/healthz']);

/**
 * Builds the control API (not listening yet).
 *
 * @example const app = buildControlServer(ctx); await app.listen({ host: '127.0.0.1', port: 7070 });
 */
export function buildControlServer(ctx: DaemonContext): FastifyInstance {
  const c = ctx.config;
  const app = Fastify({
    logger: false,
    bodyLimit: 16 << 20,
    forceCloseConnections: true,
    // Idle sockets and slowloris: complete headers within httpHeadersTimeoutMs (checked often enough to
    // act within about a tenth of it); keep-alive connections idle between requests close after their own
    // timeout; a request's body must arrive within httpRequestTimeoutMs (a long upload that keeps sending
    // is fine); sockets on which nothing moves are handled by the 'timeout' listener below.
    http: {
      headersTimeout: c.httpHeadersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(5000, Math.floor(c.httpHeadersTimeoutMs / 10))),
    },
    requestTimeout: c.httpRequestTimeoutMs,
    keepAliveTimeout: c.httpKeepAliveTimeoutMs,
    connectionTimeout: c.httpIdleTimeoutMs,
  });
  app.server.maxConnections = c.httpMaxConnections;
  // Uploads arrive as raw streams; the route writes them to disk.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.addHook('onRequest', async (req, reply) => {
    // No byte moved for httpIdleTimeoutMs: while the daemon still works on the answer (an import hashing
    // a model), the client is waiting and the socket stays; a stalled body or a client that stopped
    // reading the answer loses its connection (an upload's staging is then removed by the upload route).
    reply.raw.on('timeout', () => {
      if (reply.raw.headersSent || !req.raw.complete) req.raw.socket.destroy();
    });
    return Promise.resolve();
  });
  app.addHook('onRequest', async (req, reply) => {
    if (PUBLIC.has(req.routeOptions.url ?? req.url)) return;
    const header = req.headers.authorization;
    const presented = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (!tokenMatches(presented, ctx.token)) {
      const { body } = httpError(tcError('TC_ERR_AUTH', presented === undefined ? 'missing bearer token' : 'wrong token'));
      closeIfBodyUnread(req, reply);
      await reply.code(401).header('www-authenticate', 'Bearer').send(body);
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpRequests.inc({ method: req.method, status: String(reply.statusCode) });
  });
  app.setErrorHandler(async (error, req, reply) => {
    const { status, body } = httpError(error);
    if (status >= 500) ctx.log.error({ err: error, url: req.url }, 'control request failed');
    closeIfBodyUnread(req, reply);
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
