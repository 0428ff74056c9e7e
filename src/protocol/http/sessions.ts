// The daemon's session routes (docs/sessions.md "On the daemon"), shared by the routes and the SDK. Appends
// and reads move their bytes over the data plane (SAPPEND / SREAD frames, docs/protocol.md "Sessions"); the
// control API creates, lists, inspects, truncates, swaps, removes and collects.

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
