// The daemon's session routes (docs/sessions.md "On the daemon"), shared by the routes and the SDK. Appends
// and reads move their bytes over the data plane (SAPPEND / SREAD frames, docs/protocol.md "Sessions"); the
// control API creates, lists, inspects, truncates, swaps, removes and collects.

import { z } from 'zod';

/** `GET` lists (`?after=&limit=`), `POST` creates (`{sessionId?, geometry}`). */
export const SESSIONS_PATH = '/v1/sessions';
/** `GET` the cache instance's counters (`SessionCacheStats`). */
export const SESSION_CACHE_STATS_PATH = '/v1/session-cache';
/** `POST` deletes cold objects no session references (`GcResult`). */
export const SESSION_GC_PATH = '/v1/session-cache/gc';

/** `/v1/sessions/{id}`: `GET` stat (`?entries=1` adds the entries), `DELETE` closes the session. */
export const sessionPath = (sessionId: string): string => `${SESSIONS_PATH}/${encodeURIComponent(sessionId)}`;
/** `POST {tokenEnd, expectHash?}`. */
export const truncatePath = (sessionId: string): string => `${sessionPath(sessionId)}/truncate`;
/** `POST` (no body): answers `SwapResult`. */
export const swapOutPath = (sessionId: string): string => `${sessionPath(sessionId)}/swap-out`;
export const swapInPath = (sessionId: string): string => `${sessionPath(sessionId)}/swap-in`;

/** The SAPPEND frame's JSON (client -> daemon), followed by DATA frames within the daemon's CREDIT, as for PUT. */
export interface SessionAppendRequest {
  readonly sessionId: string;
  readonly tokenOffset: number;
  /** Bytes that follow: whole tokens. */
  readonly size: number;
  readonly expectHash?: string;
  readonly timeoutMs?: number;
}

/** The SREAD frame's JSON (client -> daemon), answered with INFO, DATA within the client's credit, DONE, as for GET. */
export interface SessionReadRequest {
  readonly sessionId: string;
  readonly tokenStart: number;
  readonly tokenEnd: number;
  /** The caller's buffer size: must equal the range's bytes (checked before any byte is sent). */
  readonly expectBytes: number;
  readonly credit: number;
  readonly expectHash?: string;
  readonly timeoutMs?: number;
}

// Bodies and answers of the control routes (parsed with protocol/http/parse.ts at both ends).

/** Longest list page; a list without `limit` answers {@link DEFAULT_SESSION_LIST_LIMIT}. */
export const MAX_SESSION_LIST_LIMIT = 10_000;
export const DEFAULT_SESSION_LIST_LIMIT = 1000;

const count = z
  .number()
  .int()
  .positive()
  .max(1 << 20);
const hash = z.string().regex(/^[0-9a-f]{32}$/, 'expected the 32 hex characters of a geometry hash');

/** A geometry as JSON (the cache validates its ranges: checkGeometry). */
export const sessionGeometry = z
  .object({
    modelId: z.string().min(1).max(256),
    layers: count,
    kvHeads: count,
    headDim: count,
    dtype: z.string().min(1).max(16),
    tokensPerPage: count,
    kvFactor: z.union([z.literal(1), z.literal(2)]).optional(),
  })
  .strict();

/** `POST /v1/sessions`. */
export const createSessionRequest = z.object({ sessionId: z.string().min(1).max(128).optional(), geometry: sessionGeometry }).strict();
/** The body of `POST /v1/sessions` (the id's pattern is SESSION_ID_PATTERN, checked by the route). */
export type CreateSessionRequest = z.input<typeof createSessionRequest>;

/** The query of `GET /v1/sessions`. */
export const listSessionsQuery = z
  .object({
    after: z.string().max(128).optional(),
    limit: z.coerce.number().int().positive().max(MAX_SESSION_LIST_LIMIT).optional(),
  })
  .strict();

/**
 * `GET /v1/sessions`: one page of `SessionStat`s (src/sessions/session-types.ts) ordered by id; `next` is the
 * `after` of the next page (null on the last).
 */
export interface SessionPage<S> {
  readonly sessions: readonly S[];
  readonly next: string | null;
}

/** The query of `GET /v1/sessions/{id}`. */
export const statSessionQuery = z.object({ entries: z.enum(['0', '1']).optional() }).strict();

/**
 * `GET /v1/sessions/{id}` answers the session's `SessionStat`; with `?entries=1` also `entryList`: its
 * `SessionEntry`s as the metadata store holds them.
 */
export type SessionDetail<S, E> = S & { readonly entryList?: readonly E[] };

/** `POST /v1/sessions/{id}/truncate`. */
export const truncateSessionRequest = z
  .object({ tokenEnd: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), expectHash: hash.optional() })
  .strict();
/** The body of `POST /v1/sessions/{id}/truncate`. */
export type TruncateSessionRequest = z.infer<typeof truncateSessionRequest>;

/** The answer of `DELETE /v1/sessions/{id}`. */
export interface CloseSessionResponse {
  readonly closed: true;
}

/** The message of TC_ERR_NOT_FOUND on a daemon started without `--sessions-cold` (routes and frames alike). */
export const SESSIONS_DISABLED_MESSAGE = 'sessions are not enabled on this daemon (--sessions-cold)';
