// The control API: HTTP/1.1 + JSON on fastify. Every route but GET /healthz needs the bearer token
// (compared in constant time); errors carry the stable code (protocol/http/error-status.ts maps categories to statuses).
// Each resource is a plugin registered with only the services it uses.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { tcError } from '../../core/errors.js';
import { MAX_KEY_BYTES } from '../../core/keys.js';
import type { Logger } from '../../core/logger.js';
import { tokenMatches } from '../../core/secrets.js';
import type { DaemonMetrics } from '../../metrics/metrics.js';
import type { ArtifactStore } from '../../store/artifact-store.js';
import type { ViewService } from '../../store/view-service.js';
import type { DaemonConfig } from '../config.js';
import type { ShmLeases } from '../shm-leases.js';
import type { ObjectStoreApi } from '../../store/objects/object-store-api.js';
import type { ObjectShmHandoff } from '../objects/shm-handoff.js';
import type { ExportCache } from '../../store/export-cache.js';
import type { ResolvedView } from '../../store/view-service.js';
import { artifactRoutes } from './artifact-routes.js';
import { clusterRoutes, redactUrl } from './cluster-routes.js';
import { exportRoutes } from './export-routes.js';
import { closeIfBodyUnread } from '../../protocol/http/early-answer.js';
import { httpError } from '../../protocol/http/error-status.js';
import { parseJsonBody } from './json-body.js';
import { importRoutes } from './import-routes.js';
import { keyRoutes } from './key-routes.js';
import type { Lifecycle } from './lifecycle.js';
import { leaseRoutes } from './load-routes.js';
import { objectRoutes } from './object-routes.js';
import { planRoutes } from './plan-routes.js';
import { pushRoutes } from './push-routes.js';
import { systemRoutes } from './system-routes.js';
import { sessionRoutes } from './session-routes.js';
import type { SessionCacheEngine } from '../../sessions/session-cache-api.js';
import type { SessionMetaStore } from '../../sessions/meta/session-meta-store.js';

/** Routes reachable without a token. */
const PUBLIC = new Set(['/healthz']);

/** The services the control API is built from. */
export interface ControlServices {
  readonly config: DaemonConfig;
  readonly daemonId: string;
  readonly token: string;
  readonly catalog: Catalog;
  readonly store: ArtifactStore;
  readonly views: ViewService;
  readonly leases: ShmLeases;
  readonly objects: ObjectStoreApi;
  readonly handoff: ObjectShmHandoff;
  /** The session cache (undefined without --sessions-cold: the session routes answer TC_ERR_NOT_FOUND). */
  readonly sessions?: SessionCacheEngine | undefined;
  readonly sessionMeta?: SessionMetaStore | undefined;
  readonly metrics: DaemonMetrics;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
  readonly exports: ExportCache;
  /** Views whose export is being built (shared with the export cache's build). */
  readonly preparing: Map<string, ResolvedView>;
  readonly catalogStatus: () => 'ok' | 'unavailable';
}

/**
 * Builds the control API (not listening yet).
 *
 * @example const app = buildControlServer(services); await app.listen({ host: '127.0.0.1', port: 7070 });
 */
export function buildControlServer(s: ControlServices): FastifyInstance {
  const c = s.config;
  const app = Fastify({
    logger: false,
    bodyLimit: 16 << 20,
    forceCloseConnections: true,
    // maxParamLength (decoded characters): every valid key fits, and keys up to 4x the cap still reach the
    // routes, which answer with the rule broken instead of fastify's bare 414.
    routerOptions: { maxParamLength: 4 * MAX_KEY_BYTES },
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
    if (!tokenMatches(presented, s.token)) {
      const { body } = httpError(tcError('TC_ERR_AUTH', presented === undefined ? 'missing bearer token' : 'wrong token'));
      closeIfBodyUnread(req, reply);
      await reply.code(401).header('www-authenticate', 'Bearer').send(body);
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    s.metrics.httpRequests.inc({ method: req.method, status: String(reply.statusCode) });
  });
  app.setErrorHandler(async (error, req, reply) => {
    const { status, body } = httpError(error);
    if (status >= 500) s.log.error({ err: error, url: req.url }, 'control request failed');
    closeIfBodyUnread(req, reply);
    await reply.code(status).send(body);
  });
  app.setNotFoundHandler(async (req, reply) => {
    // Unknown routes answer 401 without a valid token (the auth hook ran), 404 with one.
    await reply.code(404).send(httpError(tcError('TC_ERR_NOT_FOUND', `no route ${req.method} ${req.url}`)).body);
  });
  const { catalog, store, views, lifecycle } = s;
  const config = c;
  void app.register(systemRoutes, {
    daemonId: s.daemonId,
    shmDir: config.shmDir,
    memoryBudget: config.memoryBudget,
    importRoots: config.importRoots,
    views,
    metrics: s.metrics,
    lifecycle,
    catalogStatus: s.catalogStatus,
  });
  void app.register(artifactRoutes, { catalog, store, views });
  void app.register(keyRoutes, { catalog });
  void app.register(importRoutes, { daemonId: s.daemonId, importRoots: config.importRoots, catalog, store, lifecycle, log: s.log });
  void app.register(pushRoutes, { catalog, store, lifecycle, log: s.log });
  void app.register(planRoutes, { catalog, views });
  void app.register(leaseRoutes, { views, leases: s.leases, metrics: s.metrics, lifecycle, log: s.log });
  void app.register(objectRoutes, { objects: s.objects, handoff: s.handoff, lifecycle });
  void app.register(sessionRoutes, { sessions: s.sessions, meta: s.sessionMeta, lifecycle });
  void app.register(exportRoutes, { views, exports: s.exports, preparing: s.preparing, lifecycle });
  void app.register(clusterRoutes, {
    catalog,
    daemonId: s.daemonId,
    catalogUrl: redactUrl(config.catalog),
    catalogStatus: s.catalogStatus,
    daemonTtlMs: config.daemonTtlMs,
  });
  return app;
}
