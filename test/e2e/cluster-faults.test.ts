// Faults in a cluster of real daemons on a real catalog: a source killed mid-transfer (the load reselects
// and never delivers wrong bytes), the catalog server stopped and restarted (local loads go on, remote ones
// recover), an export budget too small (canonical fallback, same bytes), a deadline shorter than the
// source's prepare (TC_ERR_TIMEOUT, no late fallback), and a peer with the wrong cluster token (refused).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '../../src/client/tensorcast-client.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { asRef, dataDirWithId, metric, startCluster, startMember, until, writeTokenFile, type ClusterMember } from '../harness/cluster.js';
import { privateRedis, redisCatalogUrl } from '../harness/services.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp } from '../helpers/reference-tp.js';

const KEY = 'model:tiny:v1';

async function catalogStatus(m: ClusterMember): Promise<string> {
  return ((await (await fetch(`${m.daemon.controlUrl}/healthz`)).json()) as { catalog: string }).catalog;
}

test('cluster fault: the source is killed mid-transfer; the load reselects another source and delivers the right bytes', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const tokenFile = writeTokenFile(t);
  const { model } = await startCluster(t, url, { daemons: 0 });
  const root = ['--import-root', join(model, '..')];
  // A (slow to serve peers) sorts before C: B picks A first.
  const a = await startMember(
    t,
    url,
    tokenFile,
    root,
    { TENSORCAST_FAULT_PEER_SERVE_DELAY_MS: '3000' },
    dataDirWithId(t, 'd-00000000000a'),
  );
  const b = await startMember(t, url, tokenFile, [], undefined, dataDirWithId(t, 'd-00000000000b'));
  const c = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000c'));
  await a.client.importModel(model, { key: KEY });
  await c.client.importModel(model);
  const source = await readTensors(model);
  const config = readConfig(model);
  const loading = b.client.load(KEY, { tp: { size: 2, rank: 0 }, timeoutMs: 60_000 });
  await until(
    'B is fetching from A',
    async () => (await metric(b, 'tensorcast_routes_selected_total{route="derived_view_from_canonical"}')) >= 1,
  );
  await a.daemon.stop('SIGKILL');
  const r = await loading;
  assertTensorsEqual(asRef(r.tensors), referenceTp(source, config, 2, 0), 'after reselection');
  assert.equal(r.stats.sourceDaemon, c.daemon.daemonId);
  assert.ok(['source_failed', 'source_prepare_unavailable'].includes(r.stats.fallback ?? ''), `fallback ${r.stats.fallback}`);
  assert.ok((await metric(b, 'tensorcast_source_reselections_total{reason="source_failed"}')) >= 1);
});

test('cluster fault: the catalog server stops and restarts; local loads keep working, remote loads recover', async (t) => {
  const redis = await privateRedis(t, { persistent: true });
  if (redis === undefined) return;
  const { members, model } = await startCluster(t, redis.url, { daemons: 2 });
  const [a, b] = members as [ClusterMember, ClusterMember];
  const { artifactId } = await a.client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  const first = await b.client.load(KEY, { tp: { size: 2, rank: 0 } });
  assert.equal(first.stats.route, 'derived_view_from_canonical');

  await redis.stop();
  await until('B reports the catalog unavailable', async () => (await catalogStatus(b)) === 'unavailable');
  // B's replica (by key: the last binding is remembered) and A's stored artifact (by id) still load.
  const local = await b.client.load(KEY, { tp: { size: 2, rank: 0 } });
  assert.equal(local.stats.route, 'local');
  assertTensorsEqual(asRef(local.tensors), referenceTp(source, config, 2, 0), 'B during the outage');
  const onA = await a.client.load(artifactId, { tp: { size: 4, rank: 1 } });
  assertTensorsEqual(asRef(onA.tensors), referenceTp(source, config, 4, 1), 'A during the outage');
  assert.equal(await metric(b, 'tensorcast_catalog_up'), 0);

  await redis.start();
  await until('B reports the catalog back', async () => (await catalogStatus(b)) === 'ok');
  await until('A reports the catalog back', async () => (await catalogStatus(a)) === 'ok');
  const remote = await b.client.load(KEY, { tp: { size: 4, rank: 2 } });
  assert.equal(remote.stats.route, 'derived_view_from_canonical');
  assertTensorsEqual(asRef(remote.tensors), referenceTp(source, config, 4, 2), 'B after the outage');
  // B's replicas were registered again: cluster ls lists its views.
  const info = await b.client.cluster();
  assert.ok(info.artifacts[0]!.replicas.some((r) => r.daemonId === b.daemon.daemonId && r.kind === 'view'));
});

test('cluster fault: an export budget too small falls back to canonical with the same bytes', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 2, extraArgs: (i) => (i === 0 ? ['--export-budget', '1KiB'] : []) });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const r = await b.client.load(KEY, { tp: { size: 2, rank: 1 } });
  assertTensorsEqual(asRef(r.tensors), referenceTp(await readTensors(model), readConfig(model), 2, 1), 'canonical fallback');
  assert.equal(r.stats.route, 'canonical');
  assert.equal(r.stats.fallback, 'export_budget_exhausted');
  assert.equal(await metric(b, 'tensorcast_route_fallbacks_total{reason="export_budget_exhausted"}'), 1);
});

test('cluster fault: a deadline shorter than the source prepare is TC_ERR_TIMEOUT, with no late fallback', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, {
    daemons: 2,
    env: (i) => (i === 0 ? { TENSORCAST_FAULT_EXPORT_BUILD_DELAY_MS: '5000' } : {}),
  });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const deadlineMs = 1000;
  const t0 = Date.now();
  await assert.rejects(b.client.load(KEY, { tp: { size: 2, rank: 0 }, deadlineMs }), { code: 'TC_ERR_TIMEOUT' });
  const took = Date.now() - t0;
  // A bound, not a speed claim: the error comes at the deadline, not after a fallback ran on.
  assert.ok(took < deadlineMs + 2000, `TC_ERR_TIMEOUT after ${took} ms for a ${deadlineMs} ms deadline`);
  assert.equal(await metric(b, 'tensorcast_routes_selected_total{route="canonical"}'), 0, 'no canonical fallback');
  assert.equal(await metric(b, 'tensorcast_route_fallbacks_total{reason="source_prepare_unavailable"}'), 0);
});

test('cluster fault: a peer with the wrong cluster token is refused on both planes, no bytes move', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 1 });
  const [a] = members as [ClusterMember];
  await a.client.importModel(model, { key: KEY });
  // D shares the catalog but not the token.
  const d = await startMember(t, url, writeTokenFile(t));
  for (const route of ['auto', 'canonical'] as const) {
    const error = await d.client.load(KEY, { tp: { size: 2, rank: 0 }, route }).then(
      () => assert.fail(`route ${route}: the load succeeded with the wrong token`),
      (e: unknown) => e,
    );
    assert.ok(isTensorcastError(error, 'TC_ERR_AUTH'), `route ${route}: ${String(error)}`);
  }
  assert.equal(await metric(d, 'tensorcast_peer_bytes_received_total{route="canonical"}'), 0);
  assert.equal(await metric(a, 'tensorcast_peer_bytes_sent_total{mode="export"}'), 0);
  // And the data plane of A refuses D's token outright.
  const direct = await connect({ url: a.daemon.controlUrl, token: d.daemon.token }).then(
    () => 'connected',
    (e: unknown) => (e as { code?: string }).code,
  );
  assert.equal(direct, 'TC_ERR_AUTH');
});

test('cluster: an export that expired on the source is prepared again by the next load (no stale route)', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 2, extraArgs: (i) => (i === 0 ? ['--export-ttl', '1s'] : []) });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const want = referenceTp(await readTensors(model), readConfig(model), 4, 3);
  for (let round = 0; round < 2; round++) {
    // Forced routes keep nothing on B: every round pulls from A's export.
    const r = await b.client.load(KEY, { tp: { size: 4, rank: 3 }, route: 'derived_view' });
    assertTensorsEqual(asRef(r.tensors), want, `round ${round}`);
    assert.equal(r.stats.route, 'derived_view_from_canonical');
    assert.equal(r.stats.fallback, null);
    // Let A's export expire (TTL 1s, swept within a second or so) and B's route decision go idle.
    await until('A retired the export', async () => (await metric(a, 'tensorcast_export_retirements_total{reason="ttl_expired"}')) > round);
  }
});
