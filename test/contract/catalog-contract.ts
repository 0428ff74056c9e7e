// The behaviour every Catalog backend must have. Each backend's test file calls runCatalogContract with a
// factory that returns a fresh, empty catalog (or undefined after skipping the test: a service is missing).

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { ArtifactRecord, Catalog, DaemonRecord, ReplicaKey } from '../../src/catalog/catalog.js';
import { openCatalog } from '../../src/catalog/open-catalog.js';
import type { RaceWorkerData } from './catalog-race-worker.js';

const artifact = (n: number): ArtifactRecord => ({
  artifactId: `tc1:${String(n).padStart(64, '0')}`,
  indexHash: `i${n}`,
  dataHash: `d${n}`,
  totalBytes: 1000 * n,
  tensorCount: n,
  indexJson: `{"v":1,"tensors":[${n}]}`,
  files: ['config.json'],
  createdAt: 1_700_000_000_000 + n,
});

/** Options of {@link runCatalogContract}. */
export interface CatalogContractOptions {
  /**
   * A URL (for openCatalog) of a fresh, empty catalog that several threads can open at once: enables the real
   * race. Undefined when it skipped the test (a service is missing).
   */
  readonly sharedUrl?: (t: TestContext) => string | undefined | Promise<string | undefined>;
}

/** Opens a fresh, empty catalog for test `t`, or resolves undefined after skipping `t`. */
export type OpenFreshCatalog = (t: TestContext) => Promise<Catalog | undefined>;

const RACE_WORKERS = 6;
const RACE_ROUNDS = 60;

/** Runs RACE_WORKERS worker threads, each with its own connection to `url`; returns each one's outcome per round. */
async function raceWorkers(url: string, artifacts: readonly [string, string]): Promise<string[][]> {
  const barrier = new SharedArrayBuffer(8);
  const workers = Array.from({ length: RACE_WORKERS }, () => {
    const data: RaceWorkerData = { url, rounds: RACE_ROUNDS, workers: RACE_WORKERS, barrier, artifacts };
    return new Worker(new URL('./catalog-race-worker.js', import.meta.url), { workerData: data });
  });
  return Promise.all(
    workers.map(
      (w) =>
        new Promise<string[]>((resolve, reject) => {
          w.once('message', (m: string[]) => resolve(m));
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`race worker exited (${code}) without a result`)));
        }),
    ),
  );
}

/** Registers the contract tests for one backend. */
export function runCatalogContract(name: string, open: OpenFreshCatalog, options: CatalogContractOptions = {}): void {
  const withCatalog = (title: string, fn: (c: Catalog) => Promise<void>): void => {
    test(`catalog contract (${name}): ${title}`, async (t) => {
      const c = await open(t);
      if (c === undefined) return;
      try {
        await fn(c);
      } finally {
        await c.close();
      }
    });
  };

  withCatalog('artifacts are stored once and read back exactly', async (c) => {
    assert.equal(await c.putArtifact(artifact(1)), true);
    assert.equal(await c.putArtifact(artifact(1)), false);
    assert.deepEqual(await c.getArtifact(artifact(1).artifactId), artifact(1));
    assert.equal(await c.getArtifact('tc1:nope'), undefined);
    await c.putArtifact(artifact(2));
    assert.deepEqual(
      (await c.listArtifacts()).map((a) => a.artifactId),
      [artifact(1).artifactId, artifact(2).artifactId],
    );
  });

  withCatalog('artifacts are listed by creation time, then id', async (c) => {
    const at = (n: number, createdAt: number): ArtifactRecord => ({ ...artifact(n), createdAt });
    await c.putArtifact(at(5, 2_000));
    await c.putArtifact(at(3, 2_000));
    await c.putArtifact(at(9, 1_000));
    await c.putArtifact(at(4, 2_000));
    assert.equal(await c.putArtifact(at(3, 500)), false);
    assert.deepEqual(
      (await c.listArtifacts()).map((a) => [a.artifactId.slice(-1), a.createdAt]),
      [
        ['9', 1_000],
        ['3', 2_000],
        ['4', 2_000],
        ['5', 2_000],
      ],
    );
  });

  withCatalog('keys: create-only, compare-and-swap, unconditional, versions count up', async (c) => {
    await c.putArtifact(artifact(1));
    await c.putArtifact(artifact(2));
    const a = artifact(1).artifactId;
    const b = artifact(2).artifactId;
    const v1 = await c.bindKey('model:x', a, null);
    assert.equal(v1.version, 1);
    await assert.rejects(c.bindKey('model:x', b, null), { code: 'TC_ERR_CONFLICT' });
    await assert.rejects(c.bindKey('model:x', b, 7), { code: 'TC_ERR_CONFLICT' });
    const v2 = await c.bindKey('model:x', b, 1);
    assert.deepEqual([v2.version, v2.artifactId], [2, b]);
    const v3 = await c.bindKey('model:x', a);
    assert.equal(v3.version, 3);
    assert.equal((await c.resolveKey('model:x'))?.artifactId, a);
    await assert.rejects(c.bindKey('model:y', a, 1), { code: 'TC_ERR_CONFLICT' });
    await assert.rejects(c.bindKey('model:y', 'tc1:missing'), { code: 'TC_ERR_NOT_FOUND' });
    assert.deepEqual(
      (await c.listKeys()).map((k) => k.key),
      ['model:x'],
    );
  });

  withCatalog('keys: a race of compare-and-swaps has exactly one winner', async (c) => {
    await c.putArtifact(artifact(1));
    await c.putArtifact(artifact(2));
    await c.bindKey('k', artifact(1).artifactId);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => c.bindKey('k', artifact(2).artifactId, 1)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'TC_ERR_CONFLICT');
  });

  test(`catalog contract (${name}): keys: connections racing from ${RACE_WORKERS} threads, exactly one winner per round`, async (t) => {
    if (options.sharedUrl === undefined) {
      t.skip(`SKIPPED: the ${name} catalog cannot be opened from several threads (no shared URL)`);
      return;
    }
    const url = await options.sharedUrl(t);
    if (url === undefined) return;
    const setup = await openCatalog(url);
    try {
      await setup.putArtifact(artifact(1));
      await setup.putArtifact(artifact(2));
    } finally {
      await setup.close();
    }
    const outcomes = await raceWorkers(url, [artifact(1).artifactId, artifact(2).artifactId]);
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const seen = outcomes.map((o) => o[round]);
      assert.equal(seen.filter((s) => s === 'won').length, 1, `round ${round}: ${seen.join(', ')}`);
      assert.equal(seen.filter((s) => s === 'TC_ERR_CONFLICT').length, RACE_WORKERS - 1, `round ${round}: ${seen.join(', ')}`);
    }
    const check = await openCatalog(url);
    try {
      const final = await check.resolveKey('race');
      assert.equal(final?.version, RACE_ROUNDS);
      assert.equal(final?.artifactId, artifact((RACE_ROUNDS - 1) % 2 === 0 ? 1 : 2).artifactId);
    } finally {
      await check.close();
    }
  });

  withCatalog('keys: delete, with and without an expected version', async (c) => {
    await c.putArtifact(artifact(1));
    await c.bindKey('k', artifact(1).artifactId);
    await assert.rejects(c.deleteKey('k', 5), { code: 'TC_ERR_CONFLICT' });
    assert.equal(await c.deleteKey('k', 1), true);
    assert.equal(await c.deleteKey('k'), false);
    assert.equal(await c.resolveKey('k'), undefined);
  });

  const replica = (artifactId: string, viewId: string | undefined, daemonId: string, tier: ReplicaKey['tier']): ReplicaKey => ({
    artifactId,
    viewId,
    daemonId,
    tier,
  });
  const rowName = (r: ReplicaKey): string => `${r.artifactId.slice(-1)}/${r.viewId ?? '-'}/${r.daemonId}/${r.tier}`;

  withCatalog('replicas: listed in order of artifact, view (canonical first), daemon, tier, with defaults', async (c) => {
    const a1 = artifact(1).artifactId;
    const a2 = artifact(2).artifactId;
    const rows = [
      replica(a2, undefined, 'd1', 'disk'),
      replica(a1, 'v2', 'd1', 'memory'),
      replica(a1, 'v1', 'd2', 'export'),
      replica(a1, undefined, 'd2', 'disk'),
      replica(a1, 'v1', 'd1', 'shm'),
      replica(a1, 'v1', 'd1', 'memory'),
      replica(a1, 'v1', 'd1', 'export'),
    ];
    for (const [i, r] of rows.entries()) await c.putReplica({ ...r, bytes: 100 + i });
    const expected = ['1/-/d2/disk', '1/v1/d1/export', '1/v1/d1/memory', '1/v1/d1/shm', '1/v1/d2/export', '1/v2/d1/memory'];
    assert.deepEqual((await c.listReplicas(a1)).map(rowName), expected);
    assert.deepEqual((await c.listReplicas()).map(rowName), [...expected, '2/-/d1/disk']);
    assert.deepEqual(await c.listReplicas('tc1:none'), []);
    // Every field comes back: a put without a state is published, a new row has no fetches.
    assert.deepEqual(await c.listReplicas(a2), [
      { artifactId: a2, viewId: undefined, daemonId: 'd1', tier: 'disk', bytes: 100, state: 'published', activeFetches: 0 },
    ]);
    await c.removeReplica(replica(a1, 'v1', 'd1', 'memory'));
    await c.removeReplica(replica(a1, 'v9', 'd1', 'memory'));
    assert.deepEqual(
      (await c.listReplicas(a1)).map(rowName),
      expected.filter((n) => n !== '1/v1/d1/memory'),
    );
  });

  withCatalog('replicas: putReplica updates bytes and state and keeps the active-fetch counter', async (c) => {
    const id = artifact(1).artifactId;
    const key = replica(id, 'v1', 'd1', 'export');
    await c.putReplica({ ...key, bytes: 250, state: 'retiring' });
    assert.equal((await c.listReplicas(id))[0]?.state, 'retiring');
    assert.equal(await c.adjustReplicaFetches(key, 1), 1);
    assert.equal(await c.adjustReplicaFetches(key, 1), 2);
    await c.putReplica({ ...key, bytes: 260 });
    assert.deepEqual(await c.listReplicas(id), [{ ...key, bytes: 260, state: 'published', activeFetches: 2 }]);
    // A removed row starts again from zero.
    await c.removeReplica(key);
    assert.equal(await c.adjustReplicaFetches(key, 1), undefined);
    await c.putReplica({ ...key, bytes: 270 });
    assert.deepEqual(await c.listReplicas(id), [{ ...key, bytes: 270, state: 'published', activeFetches: 0 }]);
  });

  withCatalog('replicas: setReplicaState changes one row; false for a missing row', async (c) => {
    const id = artifact(1).artifactId;
    const a = replica(id, 'v1', 'd1', 'export');
    const b = replica(id, 'v1', 'd2', 'export');
    await c.putReplica({ ...a, bytes: 1 });
    await c.putReplica({ ...b, bytes: 1 });
    await c.adjustReplicaFetches(a, 3);
    assert.equal(await c.setReplicaState(a, 'retiring'), true);
    assert.deepEqual(
      (await c.listReplicas(id)).map((r) => [r.daemonId, r.state, r.activeFetches, r.bytes]),
      [
        ['d1', 'retiring', 3, 1],
        ['d2', 'published', 0, 1],
      ],
    );
    assert.equal(await c.setReplicaState(a, 'published'), true);
    assert.equal((await c.listReplicas(id))[0]?.state, 'published');
    assert.equal(await c.setReplicaState(replica(id, 'v1', 'd3', 'export'), 'retiring'), false);
    assert.equal(await c.setReplicaState(replica(id, 'v1', 'd1', 'memory'), 'retiring'), false);
    assert.equal((await c.listReplicas(id)).length, 2);
  });

  withCatalog('replicas: adjustReplicaFetches is atomic, floors at zero, and creates nothing', async (c) => {
    const id = artifact(1).artifactId;
    const key = replica(id, undefined, 'd1', 'disk');
    await c.putReplica({ ...key, bytes: 1000 });
    const values = await Promise.all(Array.from({ length: 64 }, () => c.adjustReplicaFetches(key, 1)));
    // Each increment saw its own new value: 1..64, none lost, none repeated.
    assert.deepEqual(
      values.map((v) => v ?? -1).sort((x, y) => x - y),
      Array.from({ length: 64 }, (_, i) => i + 1),
    );
    assert.equal((await c.listReplicas(id))[0]?.activeFetches, 64);
    const down = await Promise.all(Array.from({ length: 64 }, () => c.adjustReplicaFetches(key, -1)));
    assert.deepEqual(
      down.map((v) => v ?? -1).sort((x, y) => x - y),
      Array.from({ length: 64 }, (_, i) => i),
    );
    assert.equal(await c.adjustReplicaFetches(key, -1), 0);
    assert.equal(await c.adjustReplicaFetches(key, 5), 5);
    assert.equal(await c.adjustReplicaFetches(key, -100), 0);
    assert.equal(await c.adjustReplicaFetches(key, 0), 0);
    assert.equal((await c.listReplicas(id))[0]?.activeFetches, 0);
    // No such row: undefined, and nothing is created.
    assert.equal(await c.adjustReplicaFetches(replica(id, 'v1', 'd1', 'disk'), 1), undefined);
    assert.equal(await c.adjustReplicaFetches(replica(id, undefined, 'd1', 'memory'), -1), undefined);
    assert.deepEqual((await c.listReplicas()).map(rowName), ['1/-/d1/disk']);
    await assert.rejects(c.adjustReplicaFetches(key, 0.5), { code: 'TC_ERR_INVALID_ARGUMENT' });
  });

  withCatalog("replicas: removeDaemonReplicas drops one daemon's rows of the given tiers, nothing else", async (c) => {
    const id = artifact(1).artifactId;
    const rows = [
      replica(id, undefined, 'd1', 'disk'),
      replica(id, 'v1', 'd1', 'memory'),
      replica(id, 'v1', 'd1', 'shm'),
      replica(id, 'v1', 'd1', 'export'),
      replica(id, 'v2', 'd1', 'export'),
      replica(id, 'v1', 'd2', 'memory'),
      replica(id, 'v1', 'd2', 'export'),
    ];
    for (const r of rows) await c.putReplica({ ...r, bytes: 250 });
    assert.equal(await c.removeDaemonReplicas('d1', ['memory', 'shm']), 2);
    assert.equal(await c.removeDaemonReplicas('d1', []), 0);
    assert.equal(await c.removeDaemonReplicas('d9', ['memory', 'shm', 'export', 'disk']), 0);
    assert.deepEqual((await c.listReplicas(id)).map(rowName), [
      '1/-/d1/disk',
      '1/v1/d1/export',
      '1/v1/d2/export',
      '1/v1/d2/memory',
      '1/v2/d1/export',
    ]);
    assert.equal(await c.removeDaemonReplicas('d1', ['export']), 2);
    assert.equal(await c.adjustReplicaFetches(replica(id, 'v1', 'd1', 'export'), 1), undefined);
    assert.deepEqual((await c.listReplicas(id)).map(rowName), ['1/-/d1/disk', '1/v1/d2/export', '1/v1/d2/memory']);
  });

  withCatalog('daemons: records round-trip with every field, ordered by id; an upsert updates them all', async (c) => {
    const d2: DaemonRecord = {
      daemonId: 'd2',
      controlUrl: 'http://10.0.0.2:7070',
      dataAddress: '10.0.0.2:7071',
      advertiseHost: '10.0.0.2',
      state: 'up',
      heartbeatAt: 1_700_000_000_002,
    };
    const d1: DaemonRecord = {
      daemonId: 'd1',
      controlUrl: 'http://[::1]:7070',
      dataAddress: '[::1]:7071',
      advertiseHost: '::1',
      state: 'up',
      heartbeatAt: 1_700_000_000_001,
    };
    await c.upsertDaemon(d2);
    await c.upsertDaemon(d1);
    assert.deepEqual(await c.listDaemons(), [d1, d2]);
    const moved: DaemonRecord = {
      daemonId: 'd1',
      controlUrl: 'http://host-a.example:8080',
      dataAddress: 'host-a.example:8081',
      advertiseHost: 'host-a.example',
      state: 'draining',
      heartbeatAt: 1_700_000_009_999,
    };
    await c.upsertDaemon(moved);
    assert.deepEqual(await c.listDaemons(), [moved, d2]);
    await c.upsertDaemon({ ...moved, heartbeatAt: moved.heartbeatAt + 1 });
    assert.deepEqual(
      (await c.listDaemons()).map((d) => d.heartbeatAt),
      [moved.heartbeatAt + 1, d2.heartbeatAt],
    );
  });
}
