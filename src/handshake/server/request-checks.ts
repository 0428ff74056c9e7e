// Validation of what a handshake request names before any store is asked: path parameters (engine id, ranks)
// and the identifier headers of a publish. Every failure is a coded 400 that names the offending part.

import { tcError } from '../../core/errors.js';
import { HANDSHAKE_ID_PATTERN, MAX_HANDSHAKE_RANK } from '../../protocol/http/handshake.js';

/** A rank address taken from the path. */
export interface RankAddress {
  readonly engineId: string;
  readonly tpRank: number;
  readonly dpRank: number;
}

/**
 * The engine id of a path.
 *
 * @throws TC_ERR_INVALID_ARGUMENT when it breaks HANDSHAKE_ID_PATTERN.
 */
export function engineIdParam(value: unknown): string {
  if (typeof value !== 'string' || !HANDSHAKE_ID_PATTERN.test(value)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `engine id must be 1..128 characters of [A-Za-z0-9._:@+-], got '${preview(value)}'`, {
      details: { field: 'engineId' },
    });
  }
  return value;
}

/**
 * A tp or dp rank of a path: a decimal integer below MAX_HANDSHAKE_RANK.
 *
 * @throws TC_ERR_INVALID_ARGUMENT otherwise.
 */
export function rankParam(name: 'tpRank' | 'dpRank', value: unknown): number {
  const n = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n < MAX_HANDSHAKE_RANK)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${name} must be an integer in 0..${MAX_HANDSHAKE_RANK - 1}, got '${preview(value)}'`, {
      details: { field: name },
    });
  }
  return n;
}

/** The engine id and ranks of `/v1/engines/:engineId/ranks/:tpRank/:dpRank`. */
export function rankAddress(params: unknown): RankAddress {
  const p = (params ?? {}) as Record<string, unknown>;
  return { engineId: engineIdParam(p['engineId']), tpRank: rankParam('tpRank', p['tpRank']), dpRank: rankParam('dpRank', p['dpRank']) };
}

/**
 * An identifier header (compatibility hash, incarnation). `required`: a missing one is an error too.
 *
 * @throws TC_ERR_MALFORMED when present and invalid (or repeated), or missing when required.
 */
export function idHeader(headers: Record<string, string | string[] | undefined>, name: string, required: true): string;
export function idHeader(headers: Record<string, string | string[] | undefined>, name: string, required: false): string | undefined;
export function idHeader(headers: Record<string, string | string[] | undefined>, name: string, required: boolean): string | undefined {
  const value = headers[name];
  if (value === undefined) {
    if (!required) return undefined;
    throw tcError('TC_ERR_MALFORMED', `header ${name} is required`, { details: { header: name } });
  }
  if (typeof value !== 'string' || !HANDSHAKE_ID_PATTERN.test(value)) {
    throw tcError('TC_ERR_MALFORMED', `header ${name} must be 1..128 characters of [A-Za-z0-9._:@+-]`, { details: { header: name } });
  }
  return value;
}

function preview(value: unknown): string {
  return String(value).slice(0, 64);
}
