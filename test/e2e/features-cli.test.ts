// `tensorcast features stat STORE_ID [--json]`: samples, generations, resident bytes and pending frees of a
// feature store, on a daemon (through the SDK, with the store token) and on a connector (--connector).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { connect } from '../../src/client/tensorcast-client.js';
import type { FeatureStats } from '../../src/features/feature-store.js';
import { openFeatureStore } from '../../src/features/open-feature-store.js';
import { startDaemon } from '../harness/daemon.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const sample = (bytes: number) => ({ x: { data: new Uint8Array(bytes).fill(7), dtype: 'U8' as const, shape: [bytes] } });

test('features stat: a store on a connector (--connector), as JSON and as lines', async (t) => {
  const url = pathToFileURL(tempDir(t)).href;
  const store = await openFeatureStore(url, 'train');
  t.after(() => store.close());
  await store.put('a', sample(1000));
  await store.put('b', sample(2000));
  await store.put('a', sample(3000));
  const json = await runCli(['features', 'stat', 'train', '--connector', url, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const stats = JSON.parse(json.stdout) as FeatureStats;
  assert.deepEqual(
    [stats.storeId, stats.samples, stats.generations, stats.objects, stats.pendingFrees, stats.backendPendingFrees],
    ['train', 2, 2, 4, 0, null],
  );
  assert.ok(stats.residentBytes > 5000 && stats.residentBytes < 6000, String(stats.residentBytes));
  const human = await runCli(['features', 'stat', 'train', '--connector', url]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^samples +2$/m);
  assert.match(human.stdout, /^generations +2$/m);
  assert.match(human.stdout, /^pending frees +0$/m);
  const bad = await runCli(['features', 'stat', 'a/b', '--connector', url]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /TC_ERR_INVALID_ARGUMENT/);
});

test('features stat: a store on the daemon, with its store token; a wrong token exits 1 with TC_ERR_AUTH', async (t) => {
  const d = await startDaemon(t);
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  const store = client.features('train', { token: 'store-tok-1', maxResidentBytes: 1 << 20 });
  const ref = await store.put('a', sample(1000));
  await store.put('b', sample(2000));
  await store.release(ref);
  const json = await runCli(['features', 'stat', 'train', '--store-token', 'store-tok-1', '--json', ...d.clientArgs]);
  assert.equal(json.code, 0, json.stderr);
  const stats = JSON.parse(json.stdout) as FeatureStats;
  assert.deepEqual([stats.backend, stats.samples, stats.generations, stats.objects, stats.maxResidentBytes], ['daemon', 1, 1, 2, 1 << 20]);
  assert.equal(typeof stats.backendPendingFrees, 'number');
  assert.ok(stats.residentBytes >= 2000, String(stats.residentBytes));
  const env = await runCli(['features', 'stat', 'train', ...d.clientArgs], { TENSORCAST_STORE_TOKEN: 'store-tok-1' });
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, /^samples +1$/m);
  const wrong = await runCli(['features', 'stat', 'train', '--store-token', 'nope', ...d.clientArgs]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /TC_ERR_AUTH/);
});
