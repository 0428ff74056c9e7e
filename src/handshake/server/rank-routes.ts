// PUT and GET of one rank's msgpack payload (docs/handshake.md "Routes"). A publish is judged from its headers
// first: the compatibility hash against the engine's live one, before the body is read (a route onRequest
// hook); only then is the body decoded, checked against the path and headers, and handed to the store, which
// re-checks hash and incarnation atomically. A read with an expected hash that differs is refused before the
// payload is looked up.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { tcError } from '../../core/errors.js';
import {
  COMPAT_HASH_HEADER,
  EXPIRES_AT_HEADER,
  INCARNATION_HEADER,
  MSGPACK_TYPE,
  type PublishAnswer,
} from '../../protocol/http/handshake.js';
import { decodeRankMetadata, type RankMetadata } from '../rank-metadata.js';
import type { HandshakeStore } from '../store/handshake-store.js';
import { idHeader, rankAddress, type RankAddress } from './request-checks.js';

/** What the rank routes use. */
export interface RankRoutesOptions {
  readonly store: HandshakeStore;
  readonly ttlMs: number;
  readonly maxPayloadBytes: number;
  readonly maxEngineBytes: number;
}

const RANK_ROUTE = '/v1/engines/:engineId/ranks/:tpRank/:dpRank';

/** The compatibility error, with `expected` and `actual` in the details. */
export function incompatible(engineId: string, expected: string, actual: string, why: string): Error {
  return tcError('TC_ERR_INCOMPATIBLE', `engine ${engineId}: ${why} (expected compatibility hash ${expected}, got ${actual})`, {
    details: { engineId, expected, actual },
  });
}

/** Registers PUT and GET `/v1/engines/:engineId/ranks/:tpRank/:dpRank`. */
export const rankRoutes: FastifyPluginAsync<RankRoutesOptions> = (app, o) => {
  const { store } = o;

  // Runs after the auth hook and before the body is read: a malformed address or header, or a hash that
  // contradicts the live incarnation's, is answered without parsing a byte of the body.
  const checkPublishHead = async (req: FastifyRequest): Promise<void> => {
    const at = rankAddress(req.params);
    const hash = idHeader(req.headers, COMPAT_HASH_HEADER, true);
    const incarnation = idHeader(req.headers, INCARNATION_HEADER, true);
    const head = await store.head(at.engineId);
    if (head !== undefined && head.incarnation === incarnation && head.compatibilityHash !== hash) {
      throw incompatible(at.engineId, head.compatibilityHash, hash, `incarnation ${incarnation} is live with another compatibility hash`);
    }
  };

  app.put(RANK_ROUTE, { onRequest: checkPublishHead }, async (req): Promise<PublishAnswer> => {
    const at = rankAddress(req.params);
    const hash = idHeader(req.headers, COMPAT_HASH_HEADER, true);
    const incarnation = idHeader(req.headers, INCARNATION_HEADER, true);
    if (req.body !== undefined && !(req.body instanceof Uint8Array)) {
      throw tcError('TC_ERR_MALFORMED', `a rank payload is sent as ${MSGPACK_TYPE}, not ${String(req.headers['content-type'])}`);
    }
    const body = req.body ?? new Uint8Array(0);
    const meta = decodeRankMetadata(body, o.maxPayloadBytes);
    checkAgreement(at, hash, incarnation, meta);
    const result = await store.publish(
      {
        engineId: at.engineId,
        tpRank: at.tpRank,
        dpRank: at.dpRank,
        incarnation,
        compatibilityHash: hash,
        tpSize: meta.tpSize,
        payload: body,
      },
      { ttlMs: o.ttlMs, maxEngineBytes: o.maxEngineBytes },
    );
    return { ...at, incarnation, expiresAtMs: result.expiresAtMs, ttlMs: o.ttlMs, replacedIncarnation: result.replacedIncarnation };
  });

  app.get(RANK_ROUTE, async (req, reply: FastifyReply) => {
    const at = rankAddress(req.params);
    const expected = idHeader(req.headers, COMPAT_HASH_HEADER, false);
    if (expected !== undefined) {
      const head = await store.head(at.engineId);
      if (head !== undefined && head.compatibilityHash !== expected) {
        throw incompatible(at.engineId, expected, head.compatibilityHash, 'the published metadata is not compatible with the reader');
      }
    }
    const found = await store.rank(at.engineId, at.tpRank, at.dpRank);
    switch (found.state) {
      case 'missing':
        throw tcError('TC_ERR_NOT_FOUND', `engine ${at.engineId} has no rank tp ${at.tpRank} dp ${at.dpRank}`, { details: { ...at } });
      case 'expired':
        throw tcError(
          'TC_ERR_EXPIRED',
          `rank tp ${at.tpRank} dp ${at.dpRank} of engine ${at.engineId} expired at ${new Date(found.expiredAtMs).toISOString()} (not renewed)`,
          { details: { ...at, expiredAtMs: found.expiredAtMs, incarnation: found.incarnation } },
        );
      case 'live': {
        const r = found.rank;
        // The head and the rank are two reads: an engine that republished in between is judged by the rank.
        if (expected !== undefined && r.compatibilityHash !== expected) {
          throw incompatible(at.engineId, expected, r.compatibilityHash, 'the published metadata is not compatible with the reader');
        }
        const bytes = Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
        return reply
          .type(MSGPACK_TYPE)
          .header(COMPAT_HASH_HEADER, r.compatibilityHash)
          .header(INCARNATION_HEADER, r.incarnation)
          .header(EXPIRES_AT_HEADER, String(r.expiresAtMs))
          .send(bytes);
      }
    }
  });
  return Promise.resolve();
};

/** The path, the headers and the payload must name the same rank, incarnation and hash. */
function checkAgreement(at: RankAddress, hash: string, incarnation: string, meta: RankMetadata): void {
  const pairs: [string, string | number, string | number][] = [
    ['engine_id', at.engineId, meta.engineId],
    ['tp_rank', at.tpRank, meta.tpRank],
    ['dp_rank', at.dpRank, meta.dpRank],
    ['incarnation', incarnation, meta.incarnation],
    ['compatibility_hash', hash, meta.compatibilityHash],
  ];
  for (const [field, outside, inside] of pairs) {
    if (outside !== inside) {
      throw tcError('TC_ERR_MALFORMED', `rank payload: '${field}' is ${String(inside)} but the request names ${String(outside)}`, {
        details: { field, request: outside, payload: inside },
      });
    }
  }
}
