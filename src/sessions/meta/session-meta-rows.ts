// A session record as a table row (SQLite and PostgreSQL): scalar columns for what the stores compare (version,
// fence, the lease) and JSON for the geometry and the entries.

import { tcError } from '../../core/errors.js';
import type { SessionGeometry } from '../geometry.js';
import type { SessionEntry, SessionRecord } from '../session-types.js';

/** One row of the sessions table (PostgreSQL's bigints arrive as strings, SQLite's as numbers). */
export interface SessionRow {
  session_id: string;
  geometry_json: string;
  geometry_hash: string;
  tokens: number | string;
  entries_json: string;
  version: number | string;
  fence: number | string;
  lease_owner: string | null;
  lease_fence: number | string | null;
  lease_expires_at: number | string | null;
  created_at: number | string;
  updated_at: number | string;
}

/** The columns of a sessions row, in the order {@link recordValues} gives them. */
export const SESSION_COLUMNS = [
  'session_id',
  'geometry_json',
  'geometry_hash',
  'tokens',
  'entries_json',
  'version',
  'fence',
  'lease_owner',
  'lease_fence',
  'lease_expires_at',
  'created_at',
  'updated_at',
] as const;

/** The record a row holds. @throws TC_ERR_BACKEND for a row whose JSON does not parse */
export function rowToRecord(row: SessionRow): SessionRecord {
  let geometry: SessionGeometry;
  let entries: SessionEntry[];
  try {
    geometry = JSON.parse(row.geometry_json) as SessionGeometry;
    entries = JSON.parse(row.entries_json) as SessionEntry[];
  } catch (error) {
    throw tcError('TC_ERR_BACKEND', `session '${row.session_id}': its stored record does not parse`, { cause: error });
  }
  const leaseFence = row.lease_fence;
  const lease =
    row.lease_owner === null || leaseFence === null || row.lease_expires_at === null
      ? null
      : { sessionId: row.session_id, owner: row.lease_owner, fence: Number(leaseFence), expiresAtMs: Number(row.lease_expires_at) };
  return {
    sessionId: row.session_id,
    geometry,
    geometryHash: row.geometry_hash,
    tokens: Number(row.tokens),
    entries,
    version: Number(row.version),
    fence: Number(row.fence),
    lease,
    createdAtMs: Number(row.created_at),
    updatedAtMs: Number(row.updated_at),
  };
}

/** The column values of `record`, in SESSION_COLUMNS order. */
export function recordValues(record: SessionRecord): (string | number | null)[] {
  return [
    record.sessionId,
    JSON.stringify(record.geometry),
    record.geometryHash,
    record.tokens,
    JSON.stringify(record.entries),
    record.version,
    record.fence,
    record.lease?.owner ?? null,
    record.lease?.fence ?? null,
    record.lease?.expiresAtMs ?? null,
    record.createdAtMs,
    record.updatedAtMs,
  ];
}
