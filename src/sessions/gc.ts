// Garbage collection of the cold tier: objects under `sessions/` that no session references, left by a crash
// between an append's (or a truncate's) cold write and its metadata update. Objects of writes in flight are
// spared: this instance's by name, other instances' by age (the grace period); with a store one process uses
// at a time (memory, sqlite), any unreferenced object written before this instance started is an orphan.

import { isTensorcastError } from '../core/errors.js';
import type { Connector } from '../connectors/connector.js';
import { SESSIONS_PREFIX, writtenAtMs } from './cold-objects.js';
import type { SessionMetaStore } from './meta/session-meta-store.js';
import type { GcResult } from './session-types.js';

/** Records listed per page while collecting references. */
const LIST_PAGE = 1000;

/** What gc needs to know. */
export interface GcContext {
  readonly cold: Connector;
  readonly meta: SessionMetaStore;
  /** Unreferenced objects younger than this are spared (writes in flight elsewhere). */
  readonly graceMs: number;
  /** When this cache instance started (ms since the epoch). */
  readonly startedAtMs: number;
  /** Keys this instance is writing or wrote while this gc ran (never deleted by it). */
  readonly protectedKeys: { has(key: string): boolean };
}

/** Every uri the store's sessions reference. */
async function referencedUris(meta: SessionMetaStore): Promise<Set<string>> {
  const uris = new Set<string>();
  let after: string | undefined;
  for (;;) {
    const page = await meta.list(after === undefined ? { limit: LIST_PAGE } : { after, limit: LIST_PAGE });
    for (const record of page) for (const e of record.entries) uris.add(e.uri);
    if (page.length < LIST_PAGE) return uris;
    after = page[page.length - 1]!.sessionId;
  }
}

/**
 * Deletes unreferenced objects under `sessions/` (objects are listed before the records, so an object
 * recorded meanwhile is seen as referenced).
 *
 * @throws the connector's and the store's errors (objects deleted so far stay deleted)
 */
export async function collectGarbage(ctx: GcContext, nowMs = Date.now()): Promise<GcResult> {
  const objects = await ctx.cold.list(SESSIONS_PREFIX).catch((error: unknown) => {
    // A file:// cold tier nothing was written to yet has no directory: no objects.
    if (isTensorcastError(error, 'TC_ERR_NOT_FOUND') && error.details.reason === 'no_such_directory') return [];
    throw error;
  });
  const referenced = await referencedUris(ctx.meta);
  let deleted = 0;
  let deletedBytes = 0;
  for (const object of objects) {
    if (referenced.has(object.key) || ctx.protectedKeys.has(object.key)) continue;
    // A key not of our form has no write time: it is no append in flight, so it is old.
    const written = writtenAtMs(object.key) ?? 0;
    const old = nowMs - written >= ctx.graceMs || (!ctx.meta.shared && written < ctx.startedAtMs);
    if (!old) continue;
    await ctx.cold.delete(object.key);
    deleted++;
    deletedBytes += object.size;
  }
  return { scanned: objects.length, deleted, deletedBytes };
}
