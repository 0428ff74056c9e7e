// How many sessions the metadata store holds and their bytes, for the tensorcast_session_cold_* gauges:
// listed page by page, at most every 30 s (a scrape in between answers the last count).

import type { SessionMetaStore } from '../../sessions/meta/session-meta-store.js';

/** Sessions and bytes of a store. */
export interface SessionInventory {
  readonly sessions: number;
  readonly bytes: number;
}

/** Longest a count is reused. */
const REFRESH_MS = 30_000;
const PAGE = 1000;

/**
 * A function answering the store's inventory, recounted at most every `refreshMs`.
 *
 * @example metrics.enableSessions({ stats: () => cache.stats(), inventory: sessionInventory(meta) });
 */
export function sessionInventory(meta: SessionMetaStore, refreshMs = REFRESH_MS): () => Promise<SessionInventory> {
  let last: { at: number; value: SessionInventory } | undefined;
  let counting: Promise<SessionInventory> | undefined;
  const count = async (): Promise<SessionInventory> => {
    let sessions = 0;
    let bytes = 0;
    let after: string | undefined;
    for (;;) {
      const page = await meta.list({ ...(after === undefined ? {} : { after }), limit: PAGE });
      for (const r of page) {
        sessions++;
        for (const e of r.entries) bytes += e.bytes;
      }
      if (page.length < PAGE) return { sessions, bytes };
      after = page[page.length - 1]!.sessionId;
    }
  };
  return async () => {
    if (last !== undefined && Date.now() - last.at < refreshMs) return last.value;
    counting ??= count()
      .then((value) => {
        last = { at: Date.now(), value };
        return value;
      })
      .finally(() => (counting = undefined));
    return counting;
  };
}
