// Three daemons (separate processes, separate data directories) on one catalog, on Redis and again on
// PostgreSQL: a model imported on A is loaded rank by rank on B (derived views prepared on A, exactly the
// view's bytes on the wire), loaded again on B (local), fetched by C from B (resident view), and forced
// through the canonical route; every byte is checked against an independent reference.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ClusterInfo } from '../../src/protocol/http/cluster.js';
import { asRef, startCluster } from '../harness/cluster.js';
import { postgresCatalogUrl, redisCatalogUrl } from '../harness/services.js';
import { runCli } from '../helpers/cli.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp } from '../helpers/reference-tp.js';
import { tempDir } from '../helpers/tmp.js';

const KEY = 'model:tiny:v1';

async function scenario(t: TestContext, url: string | undefined): Promise<void> {
  if (url === undefined) return;
  const { members, model } = await startCluster(t, url);
  const [a, b, c] = members as [(typeof members)[0], (typeof members)[0], (typeof members)[0]];
  const imported = await a.client.importModel(model, { key: KEY });
  const source = await readTensors(model);
  const config = readConfig(model);

  for (const tp of [1, 2, 4]) {
    for (let rank = 0; rank < tp; rank++) {
      const what = `B tp${tp} rank ${rank}`;
      const want = referenceTp(source, config, tp, rank);
      const first = await b.client.load(KEY, { tp: { size: tp, rank } });
      assertTensorsEqual(asRef(first.tensors), want, what);
      // TP=1 is the identity view: the canonical bytes are exactly the view, there is nothing to derive.
      const route = tp === 1 ? 'canonical' : 'derived_view_from_canonical';
      assert.equal(first.stats.route, route, `${what}: route`);
      assert.equal(first.stats.sourceDaemon, a.daemon.daemonId, `${what}: source`);
      assert.equal(first.stats.fallback, null, `${what}: no fallback`);
      assert.equal(first.stats.wireBytes, first.buffer.length, `${what}: exactly the view's bytes on the wire`);
      assert.equal(first.stats.amplification, 1, `${what}: amplification`);
      const second = await b.client.load(KEY, { tp: { size: tp, rank } });
      assertTensorsEqual(asRef(second.tensors), want, `${what} again`);
      assert.equal(second.stats.route, 'local', `${what}: the second load is local`);
      assert.equal(second.stats.wireBytes, 0);
    }
  }

  // C fetches a view B holds: from B's memory replica, not from A.
  const fromB = await c.client.load(KEY, { tp: { size: 2, rank: 1 } });
  assertTensorsEqual(asRef(fromB.tensors), referenceTp(source, config, 2, 1), 'C tp2 rank 1');
  assert.equal(fromB.stats.route, 'resident_view');
  assert.equal(fromB.stats.sourceDaemon, b.daemon.daemonId);

  // A forced canonical route moves canonical ranges and slices on C: the same bytes.
  const canonical = await c.client.load(KEY, { tp: { size: 4, rank: 3 }, route: 'canonical' });
  assertTensorsEqual(asRef(canonical.tensors), referenceTp(source, config, 4, 3), 'C tp4 rank 3 canonical');
  assert.equal(canonical.stats.route, 'canonical');
  assert.equal(canonical.stats.sourceDaemon, a.daemon.daemonId);
  assert.ok(canonical.stats.wireBytes >= canonical.buffer.length, 'the canonical route moves at least the view');

  // The CLI names the route and writes the same bytes; --timeout takes a duration. (No daemon holds TP=8
  // views yet: C derives this one from A.)
  const out = join(tempDir(t), 'c-tp8r5.safetensors');
  const cli = await runCli([
    'load',
    KEY,
    '--tp-size',
    '8',
    '--tp-rank',
    '5',
    '--timeout',
    '30s',
    '--out',
    out,
    '--json',
    ...c.daemon.clientArgs,
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  const json = JSON.parse(cli.stdout) as { route: string; sourceDaemon: string | null; wireBytes: number; bytes: number };
  assert.equal(json.route, 'derived_view_from_canonical');
  assert.equal(json.wireBytes, json.bytes);
  assertTensorsEqual(await readTensors(out), referenceTp(source, config, 8, 5), 'CLI load on C');

  // cluster ls: three live daemons; A stores the artifact, B holds views, A keeps exports.
  const ls = await runCli(['cluster', 'ls', '--json', ...b.daemon.clientArgs]);
  assert.equal(ls.code, 0, ls.stderr);
  const info = JSON.parse(ls.stdout) as ClusterInfo;
  assert.equal(info.self, b.daemon.daemonId);
  assert.equal(info.catalog.status, 'ok');
  assert.deepEqual(
    info.daemons.map((d) => d.alive),
    [true, true, true],
  );
  const replicas = info.artifacts.find((x) => x.artifactId === imported.artifactId)!.replicas;
  const kinds = (daemonId: string): Set<string> => new Set(replicas.filter((r) => r.daemonId === daemonId).map((r) => r.kind));
  assert.ok(kinds(a.daemon.daemonId).has('canonical'), 'A stores the artifact');
  assert.ok(kinds(a.daemon.daemonId).has('export'), 'A keeps exports');
  assert.ok(kinds(b.daemon.daemonId).has('view'), 'B holds views');
  const human = await runCli(['cluster', 'ls', ...b.daemon.clientArgs]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, new RegExp(`${b.daemon.daemonId} \\(this\\)`));
}

test('cluster on Redis: derived views from the source, local on the second load, resident views from a peer, canonical forced', async (t) => {
  await scenario(t, await redisCatalogUrl(t));
});

test('cluster on PostgreSQL: derived views from the source, local on the second load, resident views from a peer, canonical forced', async (t) => {
  await scenario(t, await postgresCatalogUrl(t));
});
