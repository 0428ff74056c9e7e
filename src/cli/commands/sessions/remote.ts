// How the sessions commands reach the daemon's session cache: through its control routes
// (src/protocol/http/sessions.ts), the same SessionCacheApi operations an embedded cache offers.

import type { GcResult, SessionCacheApi, SessionEntry, SessionStat, SwapResult, TensorcastClient } from '../../../client/index.js';
import { SESSION_GC_PATH, SESSIONS_PATH, sessionPath, swapInPath, swapOutPath, type SessionPage } from '../../../protocol/http/sessions.js';

/** What the sessions commands use of the session cache API. */
export type RemoteSessionsApi = Pick<SessionCacheApi, 'list' | 'stat' | 'close' | 'swapIn' | 'swapOut' | 'gc'>;

/** The daemon's session cache, as far as the commands need it. */
export function sessionsOf(client: TensorcastClient): RemoteSessionsApi {
  const control = client.control;
  return {
    list: async (options = {}) => {
      const q = new URLSearchParams();
      if (options.after !== undefined) q.set('after', options.after);
      if (options.limit !== undefined) q.set('limit', String(options.limit));
      return [...(await control.json<SessionPage<SessionStat>>('GET', `${SESSIONS_PATH}?${q.toString()}`)).sessions];
    },
    stat: (id) => control.json<SessionStat>('GET', sessionPath(id)),
    close: async (id) => void (await control.json<unknown>('DELETE', sessionPath(id))),
    swapIn: (id) => control.json<SwapResult>('POST', swapInPath(id)),
    swapOut: (id) => control.json<SwapResult>('POST', swapOutPath(id)),
    gc: () => control.json<GcResult>('POST', SESSION_GC_PATH),
  };
}

/** Every session, page by page. */
export async function listAllSessions(api: RemoteSessionsApi, pageSize = 1000): Promise<SessionStat[]> {
  const out: SessionStat[] = [];
  for (;;) {
    const after = out.length === 0 ? undefined : out[out.length - 1]!.sessionId;
    const page = await api.list({ ...(after === undefined ? {} : { after }), limit: pageSize });
    out.push(...page);
    if (page.length < pageSize) return out;
  }
}

/** A session's entries as its metadata store holds them (`GET /v1/sessions/{id}?entries=1`). */
export async function sessionEntries(client: TensorcastClient, sessionId: string): Promise<readonly SessionEntry[]> {
  const r = await client.control.json<{ entryList?: readonly SessionEntry[] }>('GET', `${sessionPath(sessionId)}?entries=1`);
  return r.entryList ?? [];
}
