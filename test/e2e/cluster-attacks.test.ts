// Attacks on the cluster code with real processes on a real catalog (Redis; PostgreSQL for liveness):
// malformed export requests and data-plane LOADs from a peer, many concurrent loads of one view, budgets
// smaller than a view, daemons killed (SIGKILL) or stopped (SIGSTOP) mid-load or mid-prepare. Each test
// states the property it guards; several of them found defects that are fixed in src/.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '../../src/client/tensorcast-client.js';
import { isTensorcastError } from '../../src/core/errors.js';
import type { PlanResponse } from '../../src/protocol/http/loads.js';
import { DataConnection, type RangeRequest } from '../../src/transport/data-connection.js';
import { asRef, dataDirWithId, metric, startCluster, startMember, until, writeTokenFile, type ClusterMember } from '../harness/cluster.js';
import { postgresCatalogUrl, redisCatalogUrl } from '../harness/services.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp } from '../helpers/reference-tp.js';

const KEY = 'model:tiny:v1';

/** Export entries in every state. */
async function exportEntries(m: ClusterMember): Promise<number> {
  let n = 0;
  for (const state of ['pending', 'ready', 'draining']) n += await metric(m, `tensorcast_export_entries{state="${state}"}`);
  return n;
}

const exportEvents = (m: ClusterMember, event: string): Promise<number> => metric(m, `tensorcast_export_events_total{event="${event}"}`);

/** POSTs a JSON body (or raw text) to a daemon's control API with its token. */
async function post(m: ClusterMember, path: string, body: unknown): Promise<{ status: number; code: string | undefined; json: unknown }> {
  const res = await fetch(`${m.daemon.controlUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${m.daemon.token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const json = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, code: json.error?.code, json };
}

/** The plan of a TP rank, as a daemon answers it (view spec and id). */
async function plan(m: ClusterMember, tp: number, rank: number): Promise<PlanResponse> {
  const r = await post(m, '/v1/plans', { key: KEY, tp: { size: tp, rank } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as PlanResponse;
}

test('attack: malformed POST /v1/exports bodies get coded 4xx errors and leave no export entry behind', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 2 });
  const [a, b] = members as [ClusterMember, ClusterMember];
  const { artifactId } = await a.client.importModel(model, { key: KEY });
  const p = await plan(a, 2, 1);
  const good = { artifactId, view: p.view, viewId: p.viewId, timeoutMs: 10_000 };
  const identity = await plan(a, 1, 0);
  const cases: [string, ClusterMember, unknown, number, string][] = [
    ['not JSON', a, '{"artifactId":', 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['empty body', a, {}, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['no timeoutMs', a, { ...good, timeoutMs: undefined }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['no view', a, { ...good, view: undefined }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['null view', a, { ...good, view: null }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['empty viewId', a, { ...good, viewId: '' }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['an extra field', a, { ...good, route: 'canonical' }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['identity view', a, { ...good, view: identity.view ?? {}, viewId: p.viewId }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['identity view, made-up id', a, { ...good, view: {}, viewId: 'identity' }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['viewId of another view', a, { ...good, viewId: (await plan(a, 2, 0)).viewId }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['viewId with a slash', a, { ...good, viewId: 'a/b' }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['a view that is not a view', a, { ...good, view: { nope: 1 } }, 400, ''],
    ['huge timeoutMs', a, { ...good, timeoutMs: 2 ** 53 }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['negative timeoutMs', a, { ...good, timeoutMs: -1 }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['fractional timeoutMs', a, { ...good, timeoutMs: 1.5 }, 400, 'TC_ERR_INVALID_ARGUMENT'],
    ['unknown artifact', a, { ...good, artifactId: 'f'.repeat(64) }, 404, 'TC_ERR_NOT_FOUND'],
    ['artifact stored elsewhere', b, good, 404, 'TC_ERR_NOT_FOUND'],
  ];
  for (const [what, m, body, status, code] of cases) {
    const r = await post(m, '/v1/exports', body);
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
    if (code !== '') assert.equal(r.code, code, `${what}: ${JSON.stringify(r.json)}`);
    else assert.match(r.code ?? '', /^TC_ERR_/, `${what}: coded`);
  }
  for (const m of [a, b]) {
    assert.equal(await exportEntries(m), 0, 'no export entry left');
    assert.equal(await exportEvents(m, 'create'), 0, 'nothing was prepared');
  }
  // The good body prepares, once; asked again it is reused.
  const first = await post(a, '/v1/exports', good);
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const again = await post(a, '/v1/exports', good);
  assert.equal((again.json as { reused: boolean }).reused, true);
  assert.equal(await exportEvents(a, 'create'), 1);
});

test('attack: data-plane LOADs with bad peer fields get coded errors; the connection stays usable or closes cleanly', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 2 });
  const [a, b] = members as [ClusterMember, ClusterMember];
  const { artifactId } = await a.client.importModel(model, { key: KEY });
  const p = await plan(a, 2, 0);
  const view = p.view as RangeRequest['view'];
  const viewId = p.viewId ?? undefined;
  const base: RangeRequest = { artifactId, view, viewId, start: 0, end: 1024, timeoutMs: 10_000 };
  const open = (m: ClusterMember): Promise<DataConnection> => DataConnection.open(m.daemon.dataAddress, m.daemon.token);
  const attempt = async (c: DataConnection, req: RangeRequest): Promise<unknown> => {
    const dest = Buffer.alloc(req.end - req.start);
    return c.load(req, dest).then(
      () => undefined,
      (e: unknown) => e,
    );
  };
  const transferId = 't-1';

  // Request-level errors: a coded ERROR, and the same connection serves the next request.
  const conn = await open(a);
  t.after(() => conn.close());
  const requestLevel: [string, ClusterMember, RangeRequest, string, string | undefined][] = [
    ['export of a view never prepared', a, { ...base, peer: { mode: 'export', transferId } }, 'TC_ERR_EXPORT_UNAVAILABLE', 'not_found'],
    ['resident view not held', a, { ...base, peer: { mode: 'resident', transferId } }, 'TC_ERR_NOT_FOUND', 'view_probe_unavailable'],
    ['canonical mode for a non-identity view', a, { ...base, peer: { mode: 'canonical', transferId } }, 'TC_ERR_NOT_FOUND', 'no_source'],
    [
      'canonical range past the end',
      a,
      { ...base, view: undefined, viewId: undefined, start: 0, end: p.totalBytes * 64, peer: { mode: 'canonical', transferId } },
      'TC_ERR_INVALID_ARGUMENT',
      undefined,
    ],
    [
      'export mode for the identity view',
      a,
      { ...base, view: undefined, viewId: undefined, peer: { mode: 'export', transferId } },
      'TC_ERR_EXPORT_UNAVAILABLE',
      'not_found',
    ],
    [
      'viewId that does not match the view',
      a,
      { ...base, viewId: 'x'.repeat(64), peer: { mode: 'export', transferId } },
      'TC_ERR_INVALID_ARGUMENT',
      undefined,
    ],
    [
      'unknown artifact',
      a,
      { ...base, artifactId: 'f'.repeat(64), peer: { mode: 'canonical', transferId } },
      'TC_ERR_NOT_FOUND',
      undefined,
    ],
  ];
  for (const [what, , req, code, reason] of requestLevel) {
    const e = await attempt(conn, req);
    assert.ok(isTensorcastError(e, code as never), `${what}: ${String(e)}`);
    if (reason !== undefined) assert.equal((e.details as { reason?: string }).reason, reason, `${what}: reason`);
    assert.ok(conn.usable, `${what}: the connection stays usable`);
  }
  // The export fetch counter was never taken by a refused fetch.
  assert.equal(await exportEvents(a, 'fetch_begin'), 0);
  // A good canonical peer request on the same connection: the canonical bytes.
  const canonicalEnd = 4096;
  const good = Buffer.alloc(canonicalEnd);
  const end = await conn.load(
    { ...base, view: undefined, viewId: undefined, end: canonicalEnd, peer: { mode: 'canonical', transferId } },
    good,
  );
  assert.equal(end.bytes, canonicalEnd);

  // Malformed peer fields: the LOAD frame itself is invalid, a connection-level protocol error.
  const malformed: [string, unknown][] = [
    ['unknown mode', { mode: 'steal', transferId }],
    ['empty transfer id', { mode: 'export', transferId: '' }],
    ['oversized transfer id', { mode: 'export', transferId: 'x'.repeat(129) }],
    ['transfer id not a string', { mode: 'export', transferId: 7 }],
    ['extra field', { mode: 'export', transferId, extra: true }],
    ['peer not an object', 'export'],
  ];
  for (const [what, peer] of malformed) {
    for (const m of [a, b]) {
      const c = await open(m);
      const e = await attempt(c, { ...base, peer: peer as RangeRequest['peer'] });
      assert.ok(isTensorcastError(e, 'TC_ERR_PROTOCOL'), `${what}: ${String(e)}`);
      assert.ok(!c.usable, `${what}: the connection is closed`);
      c.close();
    }
  }
  // Both daemons still serve.
  const r = await b.client.load(KEY, { tp: { size: 2, rank: 0 } });
  assertTensorsEqual(asRef(r.tensors), referenceTp(await readTensors(model), readConfig(model), 2, 0), 'after the attacks');
});

test('attack: 8 clients on B load the same TP rank at once: one preparation on A, identical right bytes', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 2 });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const want = referenceTp(await readTensors(model), readConfig(model), 4, 3);
  const clients = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const c = await connect({ url: b.daemon.controlUrl, token: b.daemon.token });
      t.after(() => c.close());
      return c;
    }),
  );
  const results = await Promise.all(clients.map((c) => c.load(KEY, { tp: { size: 4, rank: 3 }, timeoutMs: 60_000 })));
  for (const [i, r] of results.entries()) {
    assertTensorsEqual(asRef(r.tensors), want, `client ${i}`);
    assert.ok(Buffer.from(r.buffer).equals(Buffer.from(results[0]!.buffer)), `client ${i}: same bytes`);
  }
  assert.equal(await exportEvents(a, 'create'), 1, 'one preparation on A');
  assert.equal(await exportEvents(a, 'fetch_begin'), await exportEvents(a, 'fetch_end'));
});

test('attack: every rank of TP=2, 4 and 8 loaded on B at once, each from its own client', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 2 });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  const jobs: [number, number][] = [];
  for (const tp of [2, 4, 8]) for (let rank = 0; rank < tp; rank++) jobs.push([tp, rank]);
  const results = await Promise.all(
    jobs.map(async ([tp, rank]) => {
      const c = await connect({ url: b.daemon.controlUrl, token: b.daemon.token });
      try {
        return await c.load(KEY, { tp: { size: tp, rank }, timeoutMs: 120_000 });
      } finally {
        await c.close();
      }
    }),
  );
  for (const [i, [tp, rank]] of jobs.entries()) {
    const r = results[i]!;
    assertTensorsEqual(asRef(r.tensors), referenceTp(source, config, tp, rank), `tp${tp} rank ${rank}`);
    assert.equal(r.stats.route, 'derived_view_from_canonical', `tp${tp} rank ${rank}: route`);
  }
  assert.equal(await exportEvents(a, 'create'), jobs.length, 'one preparation per view');
  assert.equal(await exportEvents(a, 'fetch_begin'), await exportEvents(a, 'fetch_end'));
});

test('attack: several destinations load the same view at once (none may wait on another)', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 4 });
  const [a, ...dests] = members as [ClusterMember, ...ClusterMember[]];
  await a.client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  for (const tp of [2, 4, 8]) {
    for (let rank = 0; rank < tp; rank++) {
      const rs = await Promise.all(dests.map((m) => m.client.load(KEY, { tp: { size: tp, rank }, timeoutMs: 20_000 })));
      const want = referenceTp(source, config, tp, rank);
      for (const [i, r] of rs.entries()) assertTensorsEqual(asRef(r.tensors), want, `${i} tp${tp} rank ${rank}`);
    }
  }
});

test('attack: a resident view being filled from a source that dies is not served onward (no relay cycle between destinations)', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const tokenFile = writeTokenFile(t);
  const { model } = await startCluster(t, url, { daemons: 0 });
  const root = ['--import-root', join(model, '..')];
  // A (slow to serve peers) sorts before C: X picks A first.
  const a = await startMember(
    t,
    url,
    tokenFile,
    root,
    { TENSORCAST_FAULT_PEER_SERVE_DELAY_MS: '3000' },
    dataDirWithId(t, 'd-00000000000a'),
  );
  const c = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000c'));
  const x = await startMember(t, url, tokenFile, [], undefined, dataDirWithId(t, 'd-00000000000e'));
  const y = await startMember(t, url, tokenFile, [], undefined, dataDirWithId(t, 'd-00000000000f'));
  await a.client.importModel(model, { key: KEY });
  await c.client.importModel(model);
  const want = referenceTp(await readTensors(model), readConfig(model), 2, 1);
  const routes = (m: ClusterMember, route: string): Promise<number> => metric(m, `tensorcast_routes_selected_total{route="${route}"}`);
  // X pulls the view from A (held there); its memory replica is registered before it is filled.
  const onX = x.client.load(KEY, { tp: { size: 2, rank: 1 }, timeoutMs: 20_000 });
  await until('X is fetching from A', async () => (await routes(x, 'derived_view_from_canonical')) >= 1);
  // Y finds X's replica in the catalog and asks X for it.
  const onY = y.client.load(KEY, { tp: { size: 2, rank: 1 }, timeoutMs: 20_000 });
  await until('Y chose X', async () => (await routes(y, 'resident_view')) >= 1);
  // A dies: X reselects. It must not end up waiting on Y while Y waits on X.
  await a.daemon.stop('SIGKILL');
  const [rx, ry] = await Promise.allSettled([onX, onY]);
  for (const [who, r] of [
    ['X', rx],
    ['Y', ry],
  ] as const) {
    assert.equal(r.status, 'fulfilled', `${who}: ${r.status === 'rejected' ? String(r.reason) : ''}`);
    assertTensorsEqual(asRef(r.value.tensors), want, who);
  }
});

test('attack: B with a memory budget smaller than the view streams it from A and keeps nothing', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, { daemons: 2, extraArgs: (i) => (i === 1 ? ['--memory-budget', '64KiB'] : []) });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  for (let i = 0; i < 3; i++) {
    for (const rank of [0, 1]) {
      const r = await b.client.load(KEY, { tp: { size: 2, rank } });
      assertTensorsEqual(asRef(r.tensors), referenceTp(source, config, 2, rank), `round ${i} rank ${rank}`);
      assert.notEqual(r.stats.route, 'local', 'nothing kept on B');
    }
  }
  assert.equal(await metric(b, 'tensorcast_replica_bytes{tier="memory"}'), 0);
  const info = await b.client.cluster();
  assert.ok(!info.artifacts[0]!.replicas.some((x) => x.daemonId === b.daemon.daemonId), 'B registered no replica');
});

test('attack: an export budget that fits one view, two views loaded alternately: idle entries are evicted, no failure', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, {
    daemons: 2,
    extraArgs: (i) => (i === 0 ? ['--export-budget', '2400KiB'] : ['--memory-budget', '64KiB']),
  });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  const sizes = await Promise.all([0, 1].map(async (rank) => (await plan(a, 2, rank)).totalBytes));
  assert.ok(
    sizes.every((n) => n <= 2400 << 10 && 2 * n > 2400 << 10),
    `views of ${sizes.join(', ')} bytes: one fits the budget, two do not`,
  );
  for (let i = 0; i < 4; i++) {
    for (const rank of [0, 1]) {
      const r = await b.client.load(KEY, { tp: { size: 2, rank } });
      assertTensorsEqual(asRef(r.tensors), referenceTp(source, config, 2, rank), `round ${i} rank ${rank}`);
      assert.equal(r.stats.route, 'derived_view_from_canonical', `round ${i} rank ${rank}: route`);
      assert.equal(r.stats.fallback, null, `round ${i} rank ${rank}: no fallback`);
      assert.equal(r.stats.wireBytes, r.buffer.length, `round ${i} rank ${rank}: exactly the view on the wire`);
    }
  }
  // Each load after the first two prepared its view again on A, evicting the other (idle) one.
  assert.equal(await exportEvents(a, 'create'), 8);
  assert.equal(await exportEvents(a, 'eviction'), 7);
  assert.equal(await metric(a, 'tensorcast_export_entries{state="ready"}'), 1);
});

test('attack: an export budget that fits one view, the second asked while the first is fetched: canonical, export_budget_exhausted', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, {
    daemons: 2,
    extraArgs: (i) => (i === 0 ? ['--export-budget', '2400KiB'] : ['--memory-budget', '64KiB']),
    // A holds each fetch for a while once counted: the first export is busy when the second is asked for.
    env: (i) => (i === 0 ? { TENSORCAST_FAULT_PEER_SERVE_DELAY_MS: '2000' } : {}),
  });
  const [a, b] = members as [ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);
  const first = b.client.load(KEY, { tp: { size: 2, rank: 0 }, timeoutMs: 60_000 });
  await until('A is sending the first view', async () => (await exportEvents(a, 'fetch_begin')) >= 1);
  const second = await b.client.load(KEY, { tp: { size: 2, rank: 1 }, timeoutMs: 60_000 });
  assertTensorsEqual(asRef(second.tensors), referenceTp(source, config, 2, 1), 'second view');
  assert.equal(second.stats.route, 'canonical');
  assert.equal(second.stats.fallback, 'export_budget_exhausted');
  const r = await first;
  assertTensorsEqual(asRef(r.tensors), referenceTp(source, config, 2, 0), 'first view');
  assert.equal(r.stats.route, 'derived_view_from_canonical');
  assert.equal(await exportEvents(a, 'eviction'), 0, 'an export with a fetch in flight is never evicted');
});

test('attack: B is killed mid-fetch: A ends the fetch, frees nothing early, and keeps serving others', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url, {
    daemons: 3,
    env: (i) => (i === 0 ? { TENSORCAST_FAULT_PEER_SERVE_DELAY_MS: '2000' } : {}),
  });
  const [a, b, c] = members as [ClusterMember, ClusterMember, ClusterMember];
  await a.client.importModel(model, { key: KEY });
  const loading = b.client.load(KEY, { tp: { size: 2, rank: 0 }, timeoutMs: 60_000 }).catch((e: unknown) => e);
  await until('A began the fetch', async () => (await exportEvents(a, 'fetch_begin')) >= 1);
  await b.daemon.stop('SIGKILL');
  assert.ok(isTensorcastError(await loading), "B's client saw a coded error");
  await until('A ended the fetch', async () => (await exportEvents(a, 'fetch_end')) === (await exportEvents(a, 'fetch_begin')));
  const r = await c.client.load(KEY, { tp: { size: 2, rank: 0 }, timeoutMs: 60_000 });
  assertTensorsEqual(asRef(r.tensors), referenceTp(await readTensors(model), readConfig(model), 2, 0), 'C after B died');
  // From A's export (as a resident view, or derived: the export B was fetching is joined).
  assert.ok(['resident_view', 'derived_view_from_canonical'].includes(r.stats.route), r.stats.route);
  assert.equal(r.stats.sourceDaemon, a.daemon.daemonId);
  assert.equal(await exportEvents(a, 'create'), 1, 'C reused the export B was fetching');
  await until('A ended every fetch', async () => (await exportEvents(a, 'fetch_end')) === (await exportEvents(a, 'fetch_begin')));
});

test('attack: A is killed while B waits for its prepare: B reselects C, or fails with a retryable coded error without C', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const tokenFile = writeTokenFile(t);
  const { model } = await startCluster(t, url, { daemons: 0 });
  const root = ['--import-root', join(model, '..')];
  const slow = { TENSORCAST_FAULT_EXPORT_BUILD_DELAY_MS: '5000' };
  const aDir = dataDirWithId(t, 'd-00000000000a');
  const a = await startMember(t, url, tokenFile, root, slow, aDir);
  const b = await startMember(t, url, tokenFile, [], undefined, dataDirWithId(t, 'd-00000000000b'));
  await a.client.importModel(model, { key: KEY });
  const want = referenceTp(await readTensors(model), readConfig(model), 4, 2);

  // Only A stores the artifact: a coded, retryable error, well before the deadline.
  const alone = b.client.load(KEY, { tp: { size: 4, rank: 2 }, timeoutMs: 60_000 }).then(
    () => assert.fail('loaded from a dead source'),
    (e: unknown) => e,
  );
  await until('A is preparing', async () => (await exportEvents(a, 'create')) >= 1);
  await a.daemon.stop('SIGKILL');
  const e = await alone;
  assert.ok(isTensorcastError(e, 'TC_ERR_UNAVAILABLE'), String(e));
  assert.equal(e.retryable, true);

  // A restarts: the same load from B now succeeds from A (the failed load left no exclusion behind).
  const a2 = await startMember(t, url, tokenFile, root, slow, aDir);
  const again = await b.client.load(KEY, { tp: { size: 4, rank: 2 }, timeoutMs: 60_000 });
  assertTensorsEqual(asRef(again.tensors), want, 'from A restarted');
  assert.equal(again.stats.sourceDaemon, a2.daemon.daemonId);
  assert.equal(again.stats.route, 'derived_view_from_canonical');
  assert.equal(again.stats.fallback, null, 'no fallback reported from the failed load before');

  // C stores the artifact too. B asks A first for another view; A is killed mid-prepare; B reselects C.
  const c = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000c'));
  await c.client.importModel(model);
  const creates = await exportEvents(a2, 'create');
  const reselecting = b.client.load(KEY, { tp: { size: 4, rank: 1 }, timeoutMs: 60_000 });
  await until('A is preparing again', async () => (await exportEvents(a2, 'create')) > creates);
  await a2.daemon.stop('SIGKILL');
  const r = await reselecting;
  assertTensorsEqual(asRef(r.tensors), referenceTp(await readTensors(model), readConfig(model), 4, 1), 'from C');
  assert.equal(r.stats.sourceDaemon, c.daemon.daemonId);
  assert.equal(r.stats.route, 'derived_view_from_canonical');
  assert.ok(['source_prepare_unavailable', 'source_failed'].includes(r.stats.fallback ?? ''), `fallback ${r.stats.fallback}`);
});

for (const [engine, catalogUrl] of [
  ['Redis', redisCatalogUrl],
  ['PostgreSQL', postgresCatalogUrl],
] as const) {
  test(`attack (${engine}): a daemon stopped (SIGSTOP) past the daemon TTL is not routed to; resumed (SIGCONT), it is again`, async (t) => {
    const url = await catalogUrl(t);
    if (url === undefined) return;
    const tokenFile = writeTokenFile(t);
    const { model } = await startCluster(t, url, { daemons: 0 });
    const ttl = ['--daemon-ttl', '2s'];
    const root = [...ttl, '--import-root', join(model, '..')];
    const a = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000a'));
    const b = await startMember(t, url, tokenFile, ttl, undefined, dataDirWithId(t, 'd-00000000000b'));
    const { artifactId } = await a.client.importModel(model, { key: KEY });
    const source = await readTensors(model);
    const config = readConfig(model);
    const alive = async (m: ClusterMember): Promise<boolean | undefined> =>
      (await b.client.cluster()).daemons.find((d) => d.daemonId === m.daemon.daemonId)?.alive;
    t.after(() => void a.daemon.child.kill('SIGCONT'));

    // A alone stores the artifact: stopped, it is no source; the load fails coded and at once.
    a.daemon.child.kill('SIGSTOP');
    await until('A is seen dead', async () => (await alive(a)) === false);
    const e = await b.client.load(artifactId, { tp: { size: 2, rank: 0 }, timeoutMs: 30_000 }).then(
      () => assert.fail('loaded from a stopped daemon'),
      (error: unknown) => error,
    );
    assert.ok(isTensorcastError(e, 'TC_ERR_UNAVAILABLE'), String(e));
    assert.equal((e.details as { reason?: string }).reason, 'no_source');

    // C stores it too: B loads from C.
    const c = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000c'));
    await c.client.importModel(model);
    const fromC = await b.client.load(artifactId, { tp: { size: 2, rank: 0 }, timeoutMs: 30_000 });
    assertTensorsEqual(asRef(fromC.tensors), referenceTp(source, config, 2, 0), 'from C');
    assert.equal(fromC.stats.sourceDaemon, c.daemon.daemonId);

    // A resumes: alive again, and routed to again (it sorts before C).
    a.daemon.child.kill('SIGCONT');
    await until('A is seen alive', async () => (await alive(a)) === true);
    const fromA = await b.client.load(artifactId, { tp: { size: 4, rank: 0 }, timeoutMs: 30_000 });
    assertTensorsEqual(asRef(fromA.tensors), referenceTp(source, config, 4, 0), 'from A');
    assert.equal(fromA.stats.sourceDaemon, a.daemon.daemonId);
    assert.equal(fromA.stats.fallback, null);
  });
}

for (const [when, fault] of [
  ['mid-transfer', { TENSORCAST_FAULT_PEER_SERVE_DELAY_MS: '1000' }],
  ['mid-prepare', { TENSORCAST_FAULT_EXPORT_BUILD_DELAY_MS: '1000' }],
] as const) {
  test(`attack: a source stopped (SIGSTOP) ${when}: the load reselects once the source is seen dead, not at its deadline`, async (t) => {
    const url = await redisCatalogUrl(t);
    if (url === undefined) return;
    const tokenFile = writeTokenFile(t);
    const { model } = await startCluster(t, url, { daemons: 0 });
    const ttl = ['--daemon-ttl', '2s'];
    const root = [...ttl, '--import-root', join(model, '..')];
    const a = await startMember(t, url, tokenFile, root, fault, dataDirWithId(t, 'd-00000000000a'));
    const b = await startMember(t, url, tokenFile, ttl, undefined, dataDirWithId(t, 'd-00000000000b'));
    const c = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000c'));
    await a.client.importModel(model, { key: KEY });
    await c.client.importModel(model);
    t.after(() => void a.daemon.child.kill('SIGCONT'));
    const loading = b.client.load(KEY, { tp: { size: 2, rank: 1 }, timeoutMs: 60_000 });
    const began = when === 'mid-transfer' ? 'fetch_begin' : 'create';
    await until(`A is ${when}`, async () => (await exportEvents(a, began)) >= 1);
    a.daemon.child.kill('SIGSTOP');
    const r = await loading;
    assertTensorsEqual(asRef(r.tensors), referenceTp(await readTensors(model), readConfig(model), 2, 1), 'from C');
    // Loaded at all: without the watch the load waited on A until its deadline.
    assert.equal(r.stats.sourceDaemon, c.daemon.daemonId);
  });
}

test('attack: the plan on a daemon lacking the artifact does not hang on a stopped source (config.json comes from another)', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const tokenFile = writeTokenFile(t);
  const { model } = await startCluster(t, url, { daemons: 0 });
  const root = ['--import-root', join(model, '..')];
  const a = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000a'));
  const b = await startMember(t, url, tokenFile, [], undefined, dataDirWithId(t, 'd-00000000000b'));
  const c = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000c'));
  await a.client.importModel(model, { key: KEY });
  await c.client.importModel(model);
  t.after(() => void a.daemon.child.kill('SIGCONT'));
  // A takes B's requests (the kernel accepts) and never answers; it is seen dead after the TTL (10 s).
  a.daemon.child.kill('SIGSTOP');
  const r = await b.client.load(KEY, { tp: { size: 2, rank: 0 }, timeoutMs: 120_000 });
  assertTensorsEqual(asRef(r.tensors), referenceTp(await readTensors(model), readConfig(model), 2, 0), 'from C');
  assert.equal(r.stats.sourceDaemon, c.daemon.daemonId);
});

test('attack: the deadline of an SDK load bounds its plan too', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const tokenFile = writeTokenFile(t);
  const { model } = await startCluster(t, url, { daemons: 0 });
  const ttl = ['--daemon-ttl', '60s'];
  const a = await startMember(t, url, tokenFile, [...ttl, '--import-root', join(model, '..')]);
  const b = await startMember(t, url, tokenFile, ttl);
  await a.client.importModel(model, { key: KEY });
  t.after(() => void a.daemon.child.kill('SIGCONT'));
  a.daemon.child.kill('SIGSTOP');
  const deadlineMs = 2000;
  const t0 = Date.now();
  await assert.rejects(b.client.load(KEY, { tp: { size: 2, rank: 0 }, deadlineMs }), { code: 'TC_ERR_TIMEOUT' });
  // A bound, not a speed claim: the plan used to wait for the client's control timeout (10 min).
  assert.ok(Date.now() - t0 < deadlineMs + 10_000, `TC_ERR_TIMEOUT after ${Date.now() - t0} ms for a ${deadlineMs} ms deadline`);
});

test('attack: a source that takes connections but never answers (stopped, not yet past the TTL): its handshake timeout is no deadline of the load', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const tokenFile = writeTokenFile(t);
  const { model } = await startCluster(t, url, { daemons: 0 });
  const ttl = ['--daemon-ttl', '15s'];
  const root = [...ttl, '--import-root', join(model, '..')];
  const a = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000a'));
  const b = await startMember(t, url, tokenFile, ttl, undefined, dataDirWithId(t, 'd-00000000000b'));
  const c = await startMember(t, url, tokenFile, root, undefined, dataDirWithId(t, 'd-00000000000c'));
  await a.client.importModel(model, { key: KEY });
  await c.client.importModel(model);
  t.after(() => void a.daemon.child.kill('SIGCONT'));
  const source = await readTensors(model);
  const config = readConfig(model);
  // B learns the artifact (and its config.json) from A first.
  const warm = await b.client.load(KEY, { tp: { size: 2, rank: 0 } });
  assert.equal(warm.stats.sourceDaemon, a.daemon.daemonId);
  // The kernel still completes A's TCP handshakes; A never says WELCOME (B gives up on a new connection
  // after 10 s, a timeout of A, not of the load). A connection B kept from the first load hangs until A is
  // seen dead (the TTL).
  a.daemon.child.kill('SIGSTOP');
  const r = await b.client.load(KEY, { tp: { size: 2, rank: 1 }, route: 'canonical', timeoutMs: 120_000 });
  assertTensorsEqual(asRef(r.tensors), referenceTp(source, config, 2, 1), 'from C');
  assert.equal(r.stats.sourceDaemon, c.daemon.daemonId);
  assert.equal(r.stats.fallback, 'source_failed');
});
