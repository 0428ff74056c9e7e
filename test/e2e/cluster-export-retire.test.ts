// Ordered retirement with real processes: the source daemon is told to stop (SIGTERM) while a destination
// is fetching one of its derived-view exports. The source withdraws the route, refuses new fetches, waits
// for the fetch in flight, then frees the export: the fetch completes with the right bytes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asRef, startCluster, type ClusterMember } from '../harness/cluster.js';
import { redisCatalogUrl } from '../harness/services.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp } from '../helpers/reference-tp.js';

/** The `msg` of every JSON log line a daemon wrote, in order. */
function logEvents(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
}

test('export retirement while a fetch is in flight: the fetch completes with the right bytes, the export is freed after it', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, {
    daemons: 2,
    extraArgs: (i) => (i === 0 ? ['--log-level', 'debug'] : []),
    // A holds every fetch from a peer for a while once it is counted: SIGTERM lands mid-fetch.
    env: (i) => (i === 0 ? { TENSORCAST_FAULT_PEER_SERVE_DELAY_MS: '1500' } : {}),
  });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: 'model:tiny:v1' });
  const loading = b.client.load('model:tiny:v1', { tp: { size: 2, rank: 1 }, timeoutMs: 60_000 });
  // Wait until A counted the fetch, then ask it to stop.
  const began = Date.now();
  while (!logEvents(a.daemon.stderr()).includes('export fetch_begin')) {
    assert.ok(Date.now() - began < 30_000, 'A never began the fetch');
    await new Promise((r) => setTimeout(r, 20));
  }
  const exited = a.daemon.stop('SIGTERM');
  const r = await loading;
  assertTensorsEqual(
    asRef(r.tensors),
    referenceTp(await readTensors(model), readConfig(model), 2, 1),
    'fetched while A retired the export',
  );
  assert.equal(r.stats.route, 'derived_view_from_canonical');
  assert.equal(await exited, 0, 'A drained and exited cleanly');
  const events = logEvents(a.daemon.stderr());
  const at = (m: string): number => events.indexOf(m);
  for (const m of ['export drain_start', 'export fetch_end', 'export drain_complete', 'export retire'])
    assert.ok(at(m) >= 0, `A logged '${m}'`);
  assert.ok(at('export drain_start') < at('export fetch_end'), 'retirement began while the fetch was in flight');
  assert.ok(at('export fetch_end') < at('export drain_complete'), 'the export was freed only after the fetch ended');
  // The route was withdrawn and unregistered: the catalog no longer lists A's export.
  const info = await b.client.cluster();
  assert.ok(!info.artifacts[0]!.replicas.some((x) => x.daemonId === a.daemon.daemonId && x.kind === 'export'), 'export row removed');
});
