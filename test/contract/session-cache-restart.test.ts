// A cache on SQLite metadata and a file:// cold tier, reopened (a restarted server): every session reads back,
// stale hot marks of the old instance do no harm, and gc removes what a crash between a cold write and its
// metadata update left behind.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createConnector } from '../../src/connectors/create-connector.js';
import { coldKey, SESSIONS_PREFIX } from '../../src/sessions/cold-objects.js';
import { createSessionCache } from '../../src/sessions/session-cache.js';
import { BPT, GEOMETRY, coldDirUrl, kvBytes } from '../helpers/session-fixtures.js';
import { tempDir } from '../helpers/tmp.js';

test('session cache restart: sqlite + file:// recover every session; gc collects a crash leftover', async (t) => {
  const cold = coldDirUrl(t);
  const meta = `sqlite://${join(tempDir(t), 'sessions.db')}`;
  const first = await createSessionCache({ hot: { budgetBytes: 32 * BPT }, cold, meta, owner: 'daemon-1' });
  for (let i = 0; i < 6; i++) {
    await first.create({ sessionId: `s${i}`, geometry: GEOMETRY });
    await first.append(`s${i}`, 0, kvBytes(5, i));
    await first.append(`s${i}`, 5, kvBytes(3, 100 + i));
  }
  await first.truncate('s0', 6);
  // The crash: an object written, its metadata update never made.
  const c = await createConnector(cold);
  t.after(() => c.close());
  const leftover = coldKey('s1', 8, 2);
  await c.write(leftover, kvBytes(2, 7));
  await first.shutdown();

  // The same owner again (a daemon keeps its id): its old marks name it but it holds no copies.
  const second = await createSessionCache({ hot: { budgetBytes: 32 * BPT }, cold, meta, owner: 'daemon-1' });
  t.after(() => second.shutdown());
  assert.equal((await second.list()).length, 6);
  for (let i = 0; i < 6; i++) {
    const st = await second.stat(`s${i}`);
    assert.equal(st.residency, 'cold');
    const want = Buffer.concat([kvBytes(5, i), kvBytes(3, 100 + i)]).subarray(0, st.tokens * BPT);
    const into = Buffer.alloc(want.length);
    await second.read(`s${i}`, { tokenStart: 0, tokenEnd: st.tokens }, { into });
    assert.ok(into.equals(want), `s${i}`);
  }
  const gc = await second.gc();
  assert.equal(gc.deleted, 1);
  assert.ok(!(await c.list(SESSIONS_PREFIX)).some((o) => o.key === leftover));
  await second.append('s1', 8, kvBytes(2, 8));
  assert.equal((await second.stat('s1')).tokens, 10);
});
