// The session routes (docs/sessions.md "On the daemon", src/protocol/http/sessions.ts): GET/POST
// /v1/sessions, GET/DELETE /v1/sessions/:id, POST /v1/sessions/:id/{truncate,swap-out,swap-in}, GET
// /v1/session-cache, POST /v1/session-cache/gc. Appends and reads move their bytes over the data plane
// (SAPPEND / SREAD). On a daemon without --sessions-cold every route answers TC_ERR_NOT_FOUND saying so.

import type { FastifyPluginAsync } from 'fastify';
import { tcError } from '../../core/errors.js';
import { parseBody } from '../../protocol/http/parse.js';
import {
  createSessionRequest,
  DEFAULT_SESSION_LIST_LIMIT,
  listSessionsQuery,
  MAX_SESSION_LIST_LIMIT,
  SESSION_CACHE_STATS_PATH,
  SESSION_GC_PATH,
  SESSIONS_DISABLED_MESSAGE,
  SESSIONS_PATH,
  statSessionQuery,
  truncateSessionRequest,
  type CloseSessionResponse,
  type SessionDetail,
  type SessionPage,
} from '../../protocol/http/sessions.js';
import type { SessionCacheEngine } from '../../sessions/session-cache-api.js';
import type { SessionMetaStore } from '../../sessions/meta/session-meta-store.js';
import {
  SESSION_ID_PATTERN,
  type GcResult,
  type SessionCacheStats,
  type SessionEntry,
  type SessionStat,
  type SwapResult,
} from '../../sessions/session-types.js';
import { refuseWhileDraining, type Lifecycle } from './lifecycle.js';

/** What the session routes use. */
export interface SessionRoutesOptions {
  /** The daemon's session cache; undefined when sessions are not enabled. */
  readonly sessions: SessionCacheEngine | undefined;
  /** The cache's metadata store (for `?entries=1`). */
  readonly meta: SessionMetaStore | undefined;
  readonly lifecycle: Lifecycle;
}

/**
 * A session id from a path parameter.
 *
 * @throws TC_ERR_INVALID_ARGUMENT when it does not match SESSION_ID_PATTERN
 */
export function checkSessionId(id: string): string {
  if (!SESSION_ID_PATTERN.test(id)) {
    throw tcError(
      'TC_ERR_INVALID_ARGUMENT',
      `invalid session id '${id.slice(0, 160)}': expected 1..128 characters of A-Z a-z 0-9 _ . : @ + -`,
      {
        details: { reason: 'session_id' },
      },
    );
  }
  return id;
}

/** The one expectHash query parameter a route takes, if given. */
function expectHashOf(query: unknown): { expectHash?: string } {
  const v = (query as { expectHash?: unknown } | undefined)?.expectHash;
  if (v === undefined) return {};
  if (typeof v !== 'string' || !/^[0-9a-f]{32}$/.test(v)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'expectHash: expected the 32 hex characters of a geometry hash');
  }
  return { expectHash: v };
}

type Params = { Params: { id: string } };

/** The session routes, as a fastify plugin. */
export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = (app, { sessions, meta, lifecycle }) => {
  const cache = (): SessionCacheEngine => {
    if (sessions === undefined) throw tcError('TC_ERR_NOT_FOUND', SESSIONS_DISABLED_MESSAGE, { details: { reason: 'sessions_disabled' } });
    return sessions;
  };
  const idOf = (req: { params: { id: string } }): string => checkSessionId(req.params.id);

  app.get(SESSIONS_PATH, async (req): Promise<SessionPage<SessionStat>> => {
    const c = cache();
    const q = parseBody(listSessionsQuery, req.query, 'query');
    const limit = q.limit ?? DEFAULT_SESSION_LIST_LIMIT;
    // One more than asked tells whether another page follows (at the stores' largest page, a full page
    // names a next one, which may be empty).
    const ask = Math.min(limit + 1, MAX_SESSION_LIST_LIMIT);
    const page = await c.list({ ...(q.after === undefined ? {} : { after: q.after }), limit: ask });
    const sessions = page.slice(0, limit);
    const more = page.length > limit || (ask === limit && page.length === limit);
    return { sessions, next: more ? sessions[sessions.length - 1]!.sessionId : null };
  });
  app.post(SESSIONS_PATH, async (req): Promise<SessionStat> => {
    const c = cache();
    refuseWhileDraining(lifecycle);
    const body = parseBody(createSessionRequest, req.body);
    if (body.sessionId !== undefined) checkSessionId(body.sessionId);
    return c.create({
      ...(body.sessionId === undefined ? {} : { sessionId: body.sessionId }),
      geometry: body.geometry as Parameters<SessionCacheEngine['create']>[0]['geometry'],
    });
  });
  app.get<Params>(`${SESSIONS_PATH}/:id`, async (req): Promise<SessionDetail<SessionStat, SessionEntry>> => {
    const c = cache();
    const id = idOf(req);
    const q = parseBody(statSessionQuery, req.query, 'query');
    const stat = await c.stat(id);
    if (q.entries !== '1' || meta === undefined) return stat;
    const record = await meta.get(id);
    if (record === undefined) throw tcError('TC_ERR_NOT_FOUND', `no session '${id}'`, { details: { sessionId: id } });
    return { ...stat, entryList: record.entries };
  });
  app.delete<Params>(`${SESSIONS_PATH}/:id`, async (req): Promise<CloseSessionResponse> => {
    const c = cache();
    const id = idOf(req);
    await c.close(id, expectHashOf(req.query));
    return { closed: true };
  });
  app.post<Params>(`${SESSIONS_PATH}/:id/truncate`, async (req): Promise<SessionStat> => {
    const c = cache();
    refuseWhileDraining(lifecycle);
    const id = idOf(req);
    const body = parseBody(truncateSessionRequest, req.body);
    return c.truncate(id, body.tokenEnd, body.expectHash === undefined ? {} : { expectHash: body.expectHash });
  });
  app.post<Params>(`${SESSIONS_PATH}/:id/swap-out`, async (req): Promise<SwapResult> => cache().swapOut(idOf(req)));
  app.post<Params>(`${SESSIONS_PATH}/:id/swap-in`, async (req): Promise<SwapResult> => {
    const c = cache();
    refuseWhileDraining(lifecycle);
    return c.swapIn(idOf(req));
  });
  app.get(SESSION_CACHE_STATS_PATH, async (): Promise<SessionCacheStats> => cache().stats());
  app.post(SESSION_GC_PATH, async (): Promise<GcResult> => cache().gc());
  return Promise.resolve();
};
