// The session control routes on a real daemon (src/protocol/http/sessions.ts): bad input answers a coded
// error and changes nothing, and the daemon keeps serving; paging of GET /v1/sessions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, type SessionStat } from '../../src/client/index.js';
import { sessionPath, SESSIONS_PATH, truncatePath } from '../../src/protocol/http/sessions.js';
import { startDaemon } from '../harness/daemon.js';
import { controlRequest, errorCode } from '../helpers/control-http.js';
import { BPT, coldDirUrl, GEOMETRY, kvBytes } from '../helpers/session-fixtures.js';

test('sessions routes: bad bodies, ids, queries and hashes are coded errors that change nothing; lists page by id', async (t) => {
  const d = await startDaemon(t, { extraArgs: ['--sessions-cold', coldDirUrl(t), '--sessions-meta', 'memory'] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  const sessions = client.sessions();
  const s = await sessions.create({ sessionId: 'r-1', geometry: GEOMETRY });
  await sessions.append('r-1', 0, kvBytes(8, 1));

  const bad: [string, string, unknown, string][] = [
    ['POST', SESSIONS_PATH, { geometry: { ...GEOMETRY, layers: 0 } }, 'TC_ERR_INVALID_ARGUMENT'],
    ['POST', SESSIONS_PATH, { geometry: { ...GEOMETRY, dtype: 'F17' } }, 'TC_ERR_INVALID_ARGUMENT'],
    ['POST', SESSIONS_PATH, { geometry: GEOMETRY, extra: 1 }, 'TC_ERR_INVALID_ARGUMENT'],
    ['POST', SESSIONS_PATH, { sessionId: 'has space', geometry: GEOMETRY }, 'TC_ERR_INVALID_ARGUMENT'],
    ['POST', SESSIONS_PATH, { sessionId: 'r-1', geometry: GEOMETRY }, 'TC_ERR_CONFLICT'],
    ['POST', SESSIONS_PATH, undefined, 'TC_ERR_INVALID_ARGUMENT'],
    ['GET', `${SESSIONS_PATH}?limit=0`, undefined, 'TC_ERR_INVALID_ARGUMENT'],
    ['GET', `${SESSIONS_PATH}?limit=abc`, undefined, 'TC_ERR_INVALID_ARGUMENT'],
    ['GET', `${SESSIONS_PATH}?bogus=1`, undefined, 'TC_ERR_INVALID_ARGUMENT'],
    ['GET', `${sessionPath('r-1')}?entries=2`, undefined, 'TC_ERR_INVALID_ARGUMENT'],
    ['GET', `${SESSIONS_PATH}/${'x'.repeat(129)}`, undefined, 'TC_ERR_INVALID_ARGUMENT'],
    ['GET', sessionPath('nope'), undefined, 'TC_ERR_NOT_FOUND'],
    ['POST', truncatePath('r-1'), { tokenEnd: -1 }, 'TC_ERR_INVALID_ARGUMENT'],
    ['POST', truncatePath('r-1'), { tokenEnd: 9 }, 'TC_ERR_SOURCE_RANGE'],
    ['POST', truncatePath('r-1'), { tokenEnd: 4, expectHash: 'abc' }, 'TC_ERR_INVALID_ARGUMENT'],
    ['POST', truncatePath('r-1'), { tokenEnd: 4, expectHash: '0'.repeat(32) }, 'TC_ERR_INCOMPATIBLE'],
    ['POST', truncatePath('nope'), { tokenEnd: 0 }, 'TC_ERR_NOT_FOUND'],
    ['DELETE', `${sessionPath('r-1')}?expectHash=${'0'.repeat(32)}`, undefined, 'TC_ERR_INCOMPATIBLE'],
    ['DELETE', `${sessionPath('r-1')}?expectHash=zz`, undefined, 'TC_ERR_INVALID_ARGUMENT'],
    ['DELETE', sessionPath('nope'), undefined, 'TC_ERR_NOT_FOUND'],
    ['POST', `${sessionPath('nope')}/swap-in`, undefined, 'TC_ERR_NOT_FOUND'],
    ['POST', `${sessionPath('nope')}/swap-out`, undefined, 'TC_ERR_NOT_FOUND'],
  ];
  for (const [method, path, body, code] of bad) {
    const a = await controlRequest(d, method, path, body);
    assert.equal(errorCode(a.json), code, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(a.json)}`);
    assert.ok(a.status >= 400 && a.status < 500, `${method} ${path}: status ${a.status}`);
  }
  const raw = await fetch(`${d.controlUrl}${SESSIONS_PATH}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
    body: '{"geometry": ',
  });
  assert.equal(raw.status, 400);
  assert.equal(errorCode(await raw.json()), 'TC_ERR_INVALID_ARGUMENT');

  // Nothing changed, and the daemon serves on.
  const after = await sessions.stat('r-1');
  assert.deepEqual([after.tokens, after.version, after.geometryHash], [8, s.version + 1, s.geometryHash]);
  const into = Buffer.alloc(8 * BPT);
  await sessions.read('r-1', { tokenStart: 0, tokenEnd: 8 }, { into });
  assert.ok(into.equals(kvBytes(8, 1)));
  assert.equal((await sessions.truncate('r-1', 4, { expectHash: s.geometryHash })).tokens, 4);

  // Pages: ordered by id, `next` the last id of a full page, null on the last one.
  for (let i = 0; i < 5; i++) await sessions.create({ sessionId: `p-${i}`, geometry: GEOMETRY });
  const ids: string[] = [];
  let after2: string | null = null;
  let pages = 0;
  do {
    const q: string = after2 === null ? '?limit=2' : `?limit=2&after=${after2}`;
    const page = (await controlRequest(d, 'GET', `${SESSIONS_PATH}${q}`)).json as { sessions: SessionStat[]; next: string | null };
    ids.push(...page.sessions.map((x) => x.sessionId));
    after2 = page.next;
    pages++;
  } while (after2 !== null);
  assert.deepEqual(ids, ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'r-1']);
  assert.equal(pages, 3);
  const largest = (await controlRequest(d, 'GET', `${SESSIONS_PATH}?limit=10000`)).json as { sessions: SessionStat[]; next: string | null };
  assert.deepEqual([largest.sessions.length, largest.next], [6, null], 'the largest page is accepted');
  assert.equal(errorCode((await controlRequest(d, 'GET', `${SESSIONS_PATH}?limit=10001`)).json), 'TC_ERR_INVALID_ARGUMENT');
});
