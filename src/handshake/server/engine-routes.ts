// The engine-level routes (docs/handshake.md "Routes"): health, one engine's summary, the list of engines,
// renew (extend the TTL of a live incarnation) and delete.

import type { FastifyPluginAsync } from 'fastify';
import { tcError } from '../../core/errors.js';
import {
  HANDSHAKE_ENGINES_PATH,
  HANDSHAKE_HEALTH_PATH,
  HANDSHAKE_ID_PATTERN,
  INCARNATION_HEADER,
  type EngineList,
  type EngineSummary,
  type RenewAnswer,
} from '../../protocol/http/handshake.js';
import type { HandshakeStore } from '../store/handshake-store.js';
import { engineIdParam, idHeader } from './request-checks.js';

/** What the engine routes use. */
export interface EngineRoutesOptions {
  readonly store: HandshakeStore;
  readonly ttlMs: number;
}

/** Registers health, summary, list, renew and delete. */
export const engineRoutes: FastifyPluginAsync<EngineRoutesOptions> = (app, o) => {
  const { store } = o;

  app.get(HANDSHAKE_HEALTH_PATH, () => Promise.resolve({ ok: true, store: store.kind }));

  app.get(HANDSHAKE_ENGINES_PATH, async (): Promise<EngineList> => ({ engines: await store.engines() }));

  app.get(`${HANDSHAKE_ENGINES_PATH}/:engineId`, async (req): Promise<EngineSummary> => {
    const engineId = engineIdParam((req.params as Record<string, unknown>)['engineId']);
    const summary = await store.engine(engineId);
    if (summary === undefined) throw tcError('TC_ERR_NOT_FOUND', `engine ${engineId} has no live rank`, { details: { engineId } });
    return summary;
  });

  app.post(`${HANDSHAKE_ENGINES_PATH}/:engineId/renew`, async (req): Promise<RenewAnswer> => {
    const engineId = engineIdParam((req.params as Record<string, unknown>)['engineId']);
    const incarnation = renewIncarnation(req.body);
    const { renewed, expiresAtMs } = await store.renew(engineId, incarnation, o.ttlMs);
    if (renewed === 0) {
      throw tcError('TC_ERR_NOT_FOUND', `engine ${engineId} has no live rank of incarnation ${incarnation}`, {
        details: { engineId, incarnation },
      });
    }
    return { renewed, expiresAtMs };
  });

  app.delete(`${HANDSHAKE_ENGINES_PATH}/:engineId`, async (req) => {
    const engineId = engineIdParam((req.params as Record<string, unknown>)['engineId']);
    const incarnation = idHeader(req.headers, INCARNATION_HEADER, false);
    return { removed: await store.remove(engineId, incarnation) };
  });
  return Promise.resolve();
};

/** The `{"incarnation": "..."}` body of a renew. */
function renewIncarnation(body: unknown): string {
  const value =
    typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)['incarnation'] : undefined;
  if (typeof value !== 'string' || !HANDSHAKE_ID_PATTERN.test(value)) {
    throw tcError('TC_ERR_MALFORMED', 'renew body must be JSON {"incarnation": "<1..128 characters of [A-Za-z0-9._:@+-]>"}', {
      details: { field: 'incarnation' },
    });
  }
  return value;
}
