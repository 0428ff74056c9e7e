import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DaemonRecord } from '../catalog/catalog.js';
import { SqliteCatalog } from '../catalog/sqlite/sqlite-catalog.js';
import { isTensorcastError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { abortable, SourceWatch } from './source-watch.js';

const record = (daemonId: string, state: DaemonRecord['state'] = 'up'): DaemonRecord => ({
  daemonId,
  controlUrl: `http://${daemonId}:1`,
  dataAddress: `${daemonId}:2`,
  advertiseHost: daemonId,
  state,
  heartbeatAt: Date.now(),
});

/** Resolves with the abort reason once `signal` aborts. */
const aborted = (signal: AbortSignal): Promise<unknown> =>
  new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));

test('source watch: work against a source that keeps heartbeating (up or draining) runs on; one that stops is aborted', async (t) => {
  const catalog = SqliteCatalog.open(':memory:');
  t.after(() => catalog.close());
  const ttl = 300;
  const watch = new SourceWatch(catalog, ttl, silentLogger);
  await catalog.upsertDaemon(record('alive'));
  await catalog.upsertDaemon(record('draining', 'draining'));
  await catalog.upsertDaemon(record('silent'));
  const beat = setInterval(() => {
    void catalog.upsertDaemon(record('alive'));
    void catalog.upsertDaemon(record('draining', 'draining'));
  }, 50);
  t.after(() => clearInterval(beat));

  let aliveSignal: AbortSignal | undefined;
  let drainingSignal: AbortSignal | undefined;
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const onAlive = watch.run('alive', (signal) => ((aliveSignal = signal), held.then(() => 'alive done')));
  const onDraining = watch.run('draining', (signal) => ((drainingSignal = signal), held.then(() => 'draining done')));
  const reason = await watch.run('silent', (signal) => aborted(signal));
  assert.ok(isTensorcastError(reason, 'TC_ERR_UNAVAILABLE'), String(reason));
  assert.equal((reason.details as { reason?: string }).reason, 'source_failed');
  // Several TTLs later the heartbeating ones are still running.
  await new Promise((r) => setTimeout(r, 3 * ttl));
  assert.equal(aliveSignal?.aborted, false);
  assert.equal(drainingSignal?.aborted, false);
  release();
  assert.deepEqual(await Promise.all([onAlive, onDraining]), ['alive done', 'draining done']);
});

test('abortable: rejects with the abort reason; a value that comes later is discarded', async () => {
  const ac = new AbortController();
  let resolveWork: (v: string) => void = () => undefined;
  const discarded: string[] = [];
  const p = abortable(new Promise<string>((r) => (resolveWork = r)), ac.signal, (v) => discarded.push(v));
  ac.abort(new Error('gone'));
  await assert.rejects(p, /gone/);
  resolveWork('late connection');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(discarded, ['late connection']);
  assert.equal(await abortable(Promise.resolve(7), new AbortController().signal), 7);
  assert.equal(await abortable(Promise.resolve(8), undefined), 8);
});
