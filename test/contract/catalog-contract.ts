// The behaviour every Catalog backend must have. Each backend's test file calls runCatalogContract with a
// factory that returns a fresh, empty catalog.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { ArtifactRecord, Catalog } from '../../src/catalog/catalog.js';
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
  /** A URL (for openCatalog) of a fresh, empty catalog that several threads can open at once: enables the real race. */
  readonly sharedUrl?: (t: TestContext) => string;
}

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
export function runCatalogContract(name: string, open: () => Promise<Catalog>, options: CatalogContractOptions = {}): void {
  const withCatalog = (title: string, fn: (c: Catalog) => Promise<void>): void => {
    test(`catalog contract (${name}): ${title}`, async () => {
      const c = await open();
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
    const url = options.sharedUrl(t);
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

  withCatalog('replicas and daemons', async (c) => {
    await c.putArtifact(artifact(1));
    const id = artifact(1).artifactId;
    await c.putReplica({ artifactId: id, viewId: undefined, daemonId: 'd1', tier: 'disk', bytes: 1000 });
    await c.putReplica({ artifactId: id, viewId: 'v1', daemonId: 'd1', tier: 'memory', bytes: 250 });
    await c.putReplica({ artifactId: id, viewId: 'v1', daemonId: 'd1', tier: 'memory', bytes: 260 });
    assert.deepEqual(await c.listReplicas(id), [
      { artifactId: id, viewId: undefined, daemonId: 'd1', tier: 'disk', bytes: 1000 },
      { artifactId: id, viewId: 'v1', daemonId: 'd1', tier: 'memory', bytes: 260 },
    ]);
    await c.removeReplica({ artifactId: id, viewId: 'v1', daemonId: 'd1', tier: 'memory' });
    assert.equal((await c.listReplicas()).length, 1);
    // A restarted daemon drops its own memory/shm rows, nothing else.
    await c.putReplica({ artifactId: id, viewId: 'v1', daemonId: 'd1', tier: 'memory', bytes: 250 });
    await c.putReplica({ artifactId: id, viewId: 'v1', daemonId: 'd1', tier: 'shm', bytes: 250 });
    await c.putReplica({ artifactId: id, viewId: 'v2', daemonId: 'd2', tier: 'memory', bytes: 250 });
    assert.equal(await c.removeDaemonReplicas('d1', ['memory', 'shm']), 2);
    assert.equal(await c.removeDaemonReplicas('d1', []), 0);
    assert.deepEqual(
      (await c.listReplicas(id)).map((r) => `${r.daemonId}/${r.tier}/${r.viewId ?? '-'}`),
      ['d1/disk/-', 'd2/memory/v2'],
    );
    await c.upsertDaemon({ daemonId: 'd1', controlUrl: 'http://127.0.0.1:1', dataAddress: '127.0.0.1:2', heartbeatAt: 1 });
    await c.upsertDaemon({ daemonId: 'd1', controlUrl: 'http://127.0.0.1:1', dataAddress: '127.0.0.1:2', heartbeatAt: 2 });
    assert.deepEqual(
      (await c.listDaemons()).map((d) => d.heartbeatAt),
      [2],
    );
  });
}
