// Models in connectors, end to end on real servers (a directory, Redis, s3rver): a daemon pushes a tiny
// Llama model, a second imports it back in full and a third lazily; TP ranks 1, 2 and 4 from both equal the
// reference slicing byte for byte, a lazy TP=4 rank fetches about a quarter of the model, verify records
// the lazy artifact's content id. Faults: a missing bucket/key/directory (a coded error, nothing left
// behind), an object rewritten after a lazy import (TC_ERR_SOURCE_CHANGED), a wrong Redis password.

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { connect, type TensorcastClient } from '../../src/client/tensorcast-client.js';
import { createConnector } from '../../src/connectors/create-connector.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { startDaemon, startDaemonWithModel, type TestDaemon } from '../harness/daemon.js';
import { asRef } from '../harness/cluster.js';
import { privateRedis, redisConnectorUrl, s3ConnectorUrl, s3TestServer } from '../harness/services.js';
import { runCli } from '../helpers/cli.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp } from '../helpers/reference-tp.js';
import { tempDir } from '../helpers/tmp.js';

const KEY = 'model:tiny:v1';

/** A connector URL for a test, and the import root a file:// one lies under (else undefined). */
type Backend = (t: TestContext) => Promise<{ url: string; root?: string } | undefined>;

const withUrl = (url: string | undefined): { url: string } | undefined => (url === undefined ? undefined : { url });

const BACKENDS: [string, Backend][] = [
  [
    'file',
    (t) => {
      const root = tempDir(t);
      return Promise.resolve({ url: pathToFileURL(join(root, 'models', 'tiny')).toString(), root });
    },
  ],
  ['redis', async (t) => withUrl(await redisConnectorUrl(t))],
  ['s3', async (t) => withUrl(await s3ConnectorUrl(t))],
];

/** A sample of the daemon's /metrics (0 when absent). */
async function metric(d: TestDaemon, sample: string): Promise<number> {
  const text = await (await fetch(`${d.controlUrl}/metrics`, { headers: { authorization: `Bearer ${d.token}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

async function clientOf(t: TestContext, d: TestDaemon): Promise<TensorcastClient> {
  const c = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => c.close());
  return c;
}

const codeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: { code?: string }) => e.code ?? 'uncoded',
  );

/** Nothing of a failed import is left: no staging folder, no artifact folder, no catalog row. */
async function assertNothingImported(d: TestDaemon, c: TensorcastClient, what: string): Promise<void> {
  const left = readdirSync(join(d.dataDir, 'artifacts')).filter((n) => n !== '.weights');
  assert.deepEqual(left, [], `${what}: the artifacts folder holds ${left.join(', ')}`);
  assert.deepEqual(await c.listArtifacts(), [], `${what}: the catalog lists artifacts`);
}

for (const [name, backend] of BACKENDS) {
  test(`${name}: push, import back in full and lazily; TP 1/2/4 equal the reference; a lazy TP=4 rank moves about a quarter`, async (t) => {
    const b = await backend(t);
    if (b === undefined) return;
    const roots = b.root === undefined ? [] : ['--import-root', b.root];
    const a = await startDaemonWithModel(t, { extraArgs: roots });
    const source = await readTensors(a.model);
    const config = readConfig(a.model);
    const stored = await a.client.importModel(a.model, { key: KEY });

    // Push: kept files and shards first, the index last; the objects are the model directory's files.
    const pushed = await a.client.push(KEY, b.url);
    assert.equal(pushed.artifactId, stored.artifactId);
    assert.equal(pushed.objects.at(-1)!.key, 'model.safetensors.index.json', 'the index is written last');
    assert.deepEqual(pushed.objects.map((o) => o.key).sort(), readdirSync(a.model).sort());
    const c = await createConnector(b.url);
    t.after(() => c.close());
    for (const o of await c.list('')) assert.deepEqual(await readBack(c, o.key, o.size), readFileSync(join(a.model, o.key)), o.key);

    // Full import on a second daemon: the same bytes give the same id.
    const full = await startDaemon(t, { extraArgs: roots });
    const fullClient = await clientOf(t, full);
    const imported = await fullClient.importModel(b.url, { key: KEY });
    assert.deepEqual([imported.artifactId, imported.created, imported.lazy, imported.via], [stored.artifactId, true, false, 'url']);

    // Lazy import on a third: a tcl: id, no tensor byte read; the first TP=4 rank fetches about a quarter.
    const lazy = await startDaemon(t, { extraArgs: roots });
    const lazyClient = await clientOf(t, lazy);
    const progress: string[] = [];
    const registered = await lazyClient.importModel(b.url, {
      key: KEY,
      lazy: true,
      onProgress: (_d, _t, phase) => progress.push(phase ?? ''),
    });
    assert.match(registered.artifactId, /^tcl:[0-9a-f]{64}$/);
    assert.deepEqual([registered.lazy, registered.totalBytes, registered.tensorCount], [true, stored.totalBytes, stored.tensorCount]);
    assert.ok(progress.includes('open'), `progress phases: ${progress.join(',')}`);
    const scheme = name === 'file' ? 'file' : name;
    const sample = `tensorcast_connector_bytes_read_total{scheme="${scheme}"}`;
    assert.equal(await metric(lazy, sample), 0, 'a lazy import reads no tensor bytes');
    const rank = await lazyClient.load(KEY, { tp: { size: 4, rank: 1 } });
    assertTensorsEqual(asRef(rank.tensors), referenceTp(source, config, 4, 1), `${name} lazy tp4 rank1`);
    const moved = await metric(lazy, sample);
    const rankBytes = rank.buffer.length;
    t.diagnostic(`${name}: a lazy TP=4 rank of ${rankBytes} bytes fetched ${moved} of the model's ${stored.totalBytes}`);
    if (name === 's3') {
      // S3 reads gaps of up to 256 KiB between a dim-1 slice's rows through (requests cost more than bytes):
      // the tiny model's row-parallel tensors come whole, the rest by rank.
      assert.ok(moved >= rankBytes && moved < stored.totalBytes * 0.5, `s3: a TP=4 rank moved ${moved} of ${stored.totalBytes} bytes`);
    } else {
      assert.ok(moved >= rankBytes && moved <= rankBytes * 1.1, `${name}: a TP=4 rank of ${rankBytes} bytes moved ${moved}`);
      assert.ok(moved < stored.totalBytes * 0.3, `${name}: about a quarter of the model (${moved} of ${stored.totalBytes})`);
    }

    for (const [who, client] of [
      ['full', fullClient],
      ['lazy', lazyClient],
    ] as const) {
      for (const tp of [1, 2, 4]) {
        for (let r = 0; r < tp; r++) {
          const got = await client.load(KEY, tp === 1 ? {} : { tp: { size: tp, rank: r } });
          assertTensorsEqual(asRef(got.tensors), tp === 1 ? source : referenceTp(source, config, tp, r), `${name} ${who} tp${tp} rank${r}`);
        }
      }
    }

    // Verify: the lazy artifact's bytes give the stored artifact's content id, recorded but not rebound.
    const verified = await lazyClient.verify(KEY);
    assert.deepEqual([verified.artifactId, verified.contentId, verified.matches], [registered.artifactId, stored.artifactId, null]);
    const listed = (await lazyClient.listArtifacts()).find((x) => x.artifactId === registered.artifactId)!;
    assert.equal(listed.lazy?.contentId, stored.artifactId);
    assert.equal(listed.keys[0]?.key, KEY, 'the key stays on the lazy id');
    assert.equal((await fullClient.verify(KEY)).matches, true);
  });
}

/** The bytes of an object. */
async function readBack(c: Awaited<ReturnType<typeof createConnector>>, key: string, size: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  if (size > 0) await c.readInto(key, 0, out);
  return out;
}

test('faults: a missing bucket, prefix or directory is TC_ERR_NOT_FOUND and leaves nothing behind', async (t) => {
  const root = tempDir(t);
  const d = await startDaemon(t, { extraArgs: ['--import-root', root] });
  const c = await clientOf(t, d);
  const urls = [pathToFileURL(join(root, 'nothing')).toString()];
  const redis = await redisConnectorUrl(t);
  if (redis !== undefined) urls.push(redis);
  const s3 = await s3TestServer(t);
  if (s3 !== undefined)
    urls.push(`s3://no-such-bucket/m?endpoint=${s3.endpoint}&region=us-east-1&accessKeyId=${s3.key}&secretAccessKey=${s3.key}`);
  for (const url of urls) {
    for (const lazy of [false, true]) {
      assert.equal(await codeOf(c.importModel(url, { key: KEY, lazy })), 'TC_ERR_NOT_FOUND', `${url} lazy=${lazy}`);
      await assertNothingImported(d, c, `${url} lazy=${lazy}`);
    }
  }
  // A file:// URL outside the import roots is refused before anything is read, and so is a model under
  // a root whose shard is a symbolic link to a file outside them.
  const outside = tempDir(t);
  assert.equal(await codeOf(c.importModel(pathToFileURL(outside).toString(), { key: KEY })), 'TC_ERR_FORBIDDEN');
  await writeSyntheticModel(join(outside, 'm'), { ...TINY_LLAMA, shards: 1 });
  mkdirSync(join(root, 'linked'));
  symlinkSync(join(outside, 'm', 'model.safetensors'), join(root, 'linked', 'model.safetensors'));
  for (const lazy of [false, true]) {
    assert.equal(await codeOf(c.importModel(pathToFileURL(join(root, 'linked')).toString(), { key: KEY, lazy })), 'TC_ERR_FORBIDDEN');
    await assertNothingImported(d, c, `symlink lazy=${lazy}`);
  }
});

for (const [name, backend] of BACKENDS) {
  test(`faults: ${name}: an object rewritten after a lazy import fails loads with TC_ERR_SOURCE_CHANGED`, async (t) => {
    const b = await backend(t);
    if (b === undefined) return;
    const roots = b.root === undefined ? [] : ['--import-root', b.root];
    const a = await startDaemonWithModel(t, { extraArgs: roots });
    await a.client.importModel(a.model, { key: KEY });
    await a.client.push(KEY, b.url);
    const lazy = await startDaemon(t, { extraArgs: roots });
    const client = await clientOf(t, lazy);
    await client.importModel(b.url, { key: KEY, lazy: true });
    // Other bytes under the same key: a loader that mixed versions would return them.
    const c = await createConnector(b.url);
    t.after(() => c.close());
    const shard = 'model-00002-of-00002.safetensors';
    const bytes = readFileSync(join(a.model, shard));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await c.write(shard, bytes);
    assert.equal(await codeOf(client.load(KEY, { tp: { size: 2, rank: 0 } })), 'TC_ERR_SOURCE_CHANGED');
    assert.equal(await codeOf(client.verify(KEY)), 'TC_ERR_SOURCE_CHANGED');
  });
}

test('faults: a wrong Redis password is TC_ERR_AUTH; the password never shows in answers, logs or ls', async (t) => {
  const server = await privateRedis(t, { password: 'hunter2-s3cret' });
  if (server === undefined) return;
  const a = await startDaemonWithModel(t);
  await a.client.importModel(a.model, { key: KEY });
  const base = new URL(server.url);
  const good = `redis://:hunter2-s3cret@${base.host}/tiny`;
  const bad = `redis://:wrong-pass-123@${base.host}/tiny`;
  await a.client.push(KEY, good);
  const lazy = await startDaemon(t);
  const client = await clientOf(t, lazy);
  const failure = await client.importModel(bad, { key: KEY, lazy: true }).then(
    () => undefined,
    (e: Error & { code?: string }) => e,
  );
  assert.equal(failure?.code, 'TC_ERR_AUTH');
  assert.ok(!failure.message.includes('wrong-pass-123'), failure.message);
  await assertNothingImported(lazy, client, 'wrong password');
  const r = await client.importModel(good, { key: KEY, lazy: true });
  assert.equal(r.source, `redis://:***@${base.host}/tiny`);
  const ls = await runCli(['ls', '--json', ...lazy.clientArgs]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /redis:\/\/:\*\*\*@/);
  await client.load(KEY, { tp: { size: 2, rank: 1 } });
  for (const [what, text] of [
    ['ls', ls.stdout],
    ['daemon log', lazy.stderr()],
    ['pushing daemon log', a.daemon.stderr()],
  ] as const) {
    assert.ok(!text.includes('hunter2-s3cret') && !text.includes('wrong-pass-123'), `${what} shows a password`);
  }
});

test('CLI: push, import --lazy, verify and load through a file:// connector; unsupported push layouts are refused', async (t) => {
  const root = tempDir(t);
  const a = await startDaemonWithModel(t, { extraArgs: ['--import-root', root] });
  const url = pathToFileURL(join(root, 'tiny')).toString();
  const cli = async (...args: string[]): Promise<string> => {
    const r = await runCli([...args, ...a.daemon.clientArgs]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await cli('import', a.model, '--key', KEY);
  const pushed = JSON.parse(await cli('push', KEY, url, '--json')) as { objects: { key: string }[] };
  assert.equal(pushed.objects.at(-1)!.key, 'model.safetensors.index.json');
  const sglang = await runCli(['push', KEY, url, '--layout', 'sglang', '--tp-size', '2', ...a.daemon.clientArgs]);
  assert.equal(sglang.code, 2, sglang.stderr);
  assert.match(sglang.stderr, /TC_ERR_INVALID_ARGUMENT/);
  const lazy = JSON.parse(await cli('import', url, '--key', 'model:tiny:lazy', '--lazy', '--json')) as {
    artifactId: string;
    lazy: boolean;
  };
  assert.equal(lazy.lazy, true);
  const out = join(root, 'rank.safetensors');
  await cli('load', 'model:tiny:lazy', '--tp-size', '2', '--tp-rank', '1', '--out', out);
  const want = referenceTp(await readTensors(a.model), readConfig(a.model), 2, 1);
  assertTensorsEqual(await readTensors(out), want, 'CLI load of a lazy artifact');
  const verified = JSON.parse(await cli('verify', 'model:tiny:lazy', '--json')) as { contentId: string; lazy: boolean };
  assert.equal(verified.lazy, true);
  const ls = JSON.parse(await cli('ls', '--json')) as { artifacts: { artifactId: string; lazy?: { contentId: string; source: string } }[] };
  const row = ls.artifacts.find((x) => x.artifactId === lazy.artifactId)!;
  assert.deepEqual([row.lazy?.contentId, row.lazy?.source], [verified.contentId, `file://${join(root, 'tiny')}`]);
  assert.match(await cli('ls'), /lazy:file:\/\//);
  // The connector URL is kept beside the descriptor, for the daemon alone.
  const folder = join(a.daemon.dataDir, 'artifacts', lazy.artifactId.replace(':', '-'));
  assert.equal(statSync(join(folder, 'connector-url')).mode & 0o777, 0o600);
  // A lazy artifact pushes too: its shards copied from its own connector, the same model directory.
  const again = join(root, 'again');
  await cli('push', 'model:tiny:lazy', pathToFileURL(again).toString());
  assert.deepEqual(readdirSync(again).sort(), readdirSync(a.model).sort());
  for (const name of readdirSync(a.model)) assert.deepEqual(readFileSync(join(again, name)), readFileSync(join(a.model, name)), name);
  // After a restart the lazy artifact opens again from its folder.
  await a.daemon.stop();
  const restarted = await startDaemon(t, { dataDir: a.daemon.dataDir, extraArgs: ['--import-root', root, '--import-root', a.dir] });
  const r = await clientOf(t, restarted);
  assertTensorsEqual(asRef((await r.load('model:tiny:lazy', { tp: { size: 2, rank: 1 } })).tensors), want, 'after a restart');
});
