// How the sessions commands reach the daemon's session cache: the SDK's `client.sessions()` (src/client),
// the same SessionCacheApi an embedded cache offers.

import type { RemoteSessions, SessionEntry, SessionStat, TensorcastClient } from '../../../client/index.js';
import { sessionPath } from '../../../protocol/http/sessions.js';

/** What the sessions commands use of the session cache API. */
export type RemoteSessionsApi = Pick<RemoteSessions, 'list' | 'stat' | 'close' | 'swapIn' | 'swapOut' | 'gc'>;

/** The daemon's session cache through the SDK. */
export function sessionsOf(client: TensorcastClient): RemoteSessionsApi {
  return client.sessions();
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
