// The session metrics (docs/metrics.md) on a real daemon: hot and cold gauges, swaps with bytes and durations
// (LRU swap-outs included), hits and misses, lease conflicts and data-plane requests.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../src/client/index.js';
import { startDaemon } from '../harness/daemon.js';
import { BPT, coldDirUrl, GEOMETRY, kvBytes } from '../helpers/session-fixtures.js';
import { tempDir } from '../helpers/tmp.js';

/** The value of one sample line of a Prometheus text, or undefined when absent. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

test('sessions metrics: hot/cold bytes and sessions, swaps in/out with bytes and durations, hits, misses, conflicts, requests', async (t) => {
  // Room for two sessions of 16 tokens: the third one's append swaps the least recently used out.
  const budget = 32 * BPT;
  const cold = coldDirUrl(t);
  const d = await startDaemon(t, { dataDir: tempDir(t), extraArgs: ['--sessions-cold', cold, '--sessions-hot-budget', String(budget)] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  // Closed before the stop below (a second close of a client throws).
  let closed = false;
  t.after(() => (closed ? undefined : client.close()));
  const sessions = client.sessions();
  for (const id of ['m-1', 'm-2', 'm-3']) {
    await sessions.create({ sessionId: id, geometry: GEOMETRY });
    await sessions.append(id, 0, kvBytes(16, id.charCodeAt(2)));
  }
  // m-1 was swapped out for m-3: reading it is a miss (swapped in, m-2 out), reading it again a hit.
  const into = Buffer.alloc(16 * BPT);
  assert.equal((await sessions.read('m-1', { tokenStart: 0, tokenEnd: 16 }, { into })).hit, false);
  assert.equal((await sessions.read('m-1', { tokenStart: 0, tokenEnd: 16 }, { into })).hit, true);
  await sessions.swapOut('m-3');

  const res = await fetch(`${d.controlUrl}/metrics`, { headers: { authorization: `Bearer ${d.token}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const stats = await sessions.stats();
  assert.equal(sample(text, 'tensorcast_session_hot_budget_bytes'), budget);
  assert.equal(sample(text, 'tensorcast_session_hot_bytes'), stats.hotBytes);
  assert.ok(stats.hotBytes <= budget);
  assert.equal(sample(text, 'tensorcast_session_hot_sessions'), 1);
  assert.equal(sample(text, 'tensorcast_session_cold_sessions'), 3);
  assert.equal(sample(text, 'tensorcast_session_cold_bytes'), 3 * 16 * BPT);
  assert.equal(sample(text, 'tensorcast_session_swaps_total{direction="out"}'), stats.swapsOut);
  assert.ok(stats.swapsOut >= 3, `LRU swap-outs and the requested one (${stats.swapsOut})`);
  assert.equal(sample(text, 'tensorcast_session_swaps_total{direction="in"}'), stats.swapsIn);
  assert.equal(sample(text, 'tensorcast_session_swap_bytes_total{direction="in"}'), stats.swapInBytes);
  assert.equal(sample(text, 'tensorcast_session_swap_duration_seconds_count{direction="out"}'), stats.swapsOut);
  assert.equal(sample(text, 'tensorcast_session_swap_duration_seconds_count{direction="in"}'), stats.swapsIn);
  assert.equal(sample(text, 'tensorcast_session_accesses_total{result="hit"}'), stats.hits);
  assert.equal(sample(text, 'tensorcast_session_accesses_total{result="miss"}'), stats.misses);
  assert.ok(stats.misses >= 1 && stats.hits >= 1);
  assert.equal(sample(text, 'tensorcast_session_lease_conflicts_total'), 0);
  assert.equal(sample(text, 'tensorcast_session_requests_total{op="append",outcome="ok"}'), 3);
  assert.equal(sample(text, 'tensorcast_session_requests_total{op="read",outcome="ok"}'), 2);
  assert.equal(sample(text, 'tensorcast_session_request_bytes_total{op="read"}'), 2 * 16 * BPT);

  // A clean stop shuts the cache down after the data plane; the sessions stay in the stores.
  closed = true;
  await client.close();
  assert.equal(await d.stop('SIGTERM'), 0, d.stderr());
  const again = await startDaemon(t, { dataDir: d.dataDir, extraArgs: ['--sessions-cold', cold, '--sessions-hot-budget', String(budget)] });
  const c2 = await connect({ url: again.controlUrl, token: again.token });
  t.after(() => c2.close());
  assert.deepEqual(
    (await c2.sessions().list()).map((s) => [s.sessionId, s.tokens, s.residency]),
    [
      ['m-1', 16, 'cold'],
      ['m-2', 16, 'cold'],
      ['m-3', 16, 'cold'],
    ],
  );
});
