// The session KV cache (docs/sessions.md): the embedded cache, its API (shared with the SDK's
// client.sessions()), the session model and the metadata stores.

export { createSessionCache, SessionCache, type SessionCacheOptions } from './session-cache.js';
export type { SwapEvent } from './swap.js';
export type {
  AppendResult,
  CreateSessionOptions,
  OpenRead,
  PendingAppend,
  ReadResult,
  SessionCacheApi,
  SessionCacheEngine,
  SessionOpOptions,
  TokenRange,
} from './session-cache-api.js';
export { bytesPerToken, checkGeometry, geometryHash, type SessionGeometry } from './geometry.js';
export {
  SESSION_ID_PATTERN,
  type GcResult,
  type SessionCacheStats,
  type SessionEntry,
  type SessionLease,
  type SessionRecord,
  type SessionStat,
  type SwapResult,
} from './session-types.js';
export { openSessionMetaStore, type OpenSessionMetaStoreOptions } from './meta/open-session-meta-store.js';
export type { SessionChange, SessionListOptions, SessionMetaStore } from './meta/session-meta-store.js';
