// End to end: the connector tuning flags. `push --chunk-bytes 1MiB` to Redis stores each shard (larger than
// 1 MiB) as several chunk keys under its manifest; `load URL --chunk-bytes 1MiB --concurrency 2` and
// `import URL --concurrency 4` read it back equal to an independent reference; bad values of the flags on
// every command exit 2 with TC_ERR_INVALID_ARGUMENT.

import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createClient } from 'redis';
import { startDaemonWithModel } from '../harness/daemon.js';
import { redisConnectorUrl } from '../harness/services.js';
import { runCli } from '../helpers/cli.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp } from '../helpers/reference-tp.js';
import { tempDir } from '../helpers/tmp.js';

const KEY = 'model:tiny:v1';
const MIB = 1024 * 1024;

/** A raw Redis client on the server of a connector URL. */
async function rawRedis(url: string) {
  const u = new URL(url);
  const client = createClient({
    socket: { host: u.hostname, port: Number(u.port || 6379) },
    database: Number(u.searchParams.get('db') ?? 0),
    ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
    ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

test('--chunk-bytes and --concurrency: push chunks at 1 MiB, load and import read it back, bad values are refused', async (t) => {
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  const { client, model, daemon } = await startDaemonWithModel(t);
  await client.importModel(model, { key: KEY });

  const pushed = await runCli(['push', KEY, url, '--chunk-bytes', '1MiB', '--concurrency', '4', '--json', ...daemon.clientArgs]);
  assert.equal(pushed.code, 0, pushed.stderr);

  // Every shard is larger than 1 MiB, so each is stored as ceil(size / 1 MiB) >= 2 chunk keys.
  const shards = readdirSync(model).filter((n) => n.endsWith('.safetensors'));
  assert.ok(shards.length > 0);
  const prefix = new URL(url).pathname.slice(1);
  const raw = await rawRedis(url);
  t.after(() => raw.destroy());
  for (const shard of shards) {
    const size = statSync(join(model, shard)).size;
    assert.ok(size > MIB, `${shard} is ${size} bytes: the test needs shards above 1 MiB`);
    const manifest = JSON.parse((await raw.get(`${prefix}/.tc/m/${shard}`)) ?? 'null') as {
      size: number;
      chunkBytes: number;
      chunks: number;
      version: string;
    };
    assert.equal(manifest.size, size, shard);
    assert.equal(manifest.chunkBytes, MIB, shard);
    assert.equal(manifest.chunks, Math.ceil(size / MIB), shard);
    assert.ok(manifest.chunks >= 2, shard);
    const chunkKeys = await raw.keys(`${prefix}/.tc/c/${manifest.version}/*`);
    assert.equal(chunkKeys.length, manifest.chunks, `${shard}: chunk keys ${chunkKeys.join(', ')}`);
  }

  // A TP rank read straight from the chunked copy equals the reference.
  const source = await readTensors(model);
  const config = readConfig(model);
  const out = join(tempDir(t), 'tp2r1.safetensors');
  const load = await runCli(['load', url, '--tp-size', '2', '--tp-rank', '1', '--chunk-bytes', '1MiB', '--concurrency', '2', '--out', out]);
  assert.equal(load.code, 0, load.stderr);
  assertTensorsEqual(await readTensors(out), referenceTp(source, config, 2, 1), `${url} tp2 rank 1`);

  // The daemon pulls it back with the flags: the same artifact as the one pushed.
  const imported = await runCli(['import', url, '--key', 'model:tiny:back', '--concurrency', '4', '--json', ...daemon.clientArgs]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.equal((JSON.parse(imported.stdout) as { artifactId: string }).artifactId, await client.resolve(KEY));

  // pull-files with the flags.
  const dir = join(tempDir(t), 'files');
  const pulled = await runCli(['pull-files', url, dir, '--chunk-bytes', '2MiB', '--concurrency', '3']);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.ok(readdirSync(dir).includes('config.json'));

  // Bad values: exit 2, TC_ERR_INVALID_ARGUMENT, before anything is written or read.
  const bad: (readonly string[])[] = [];
  for (const flags of [
    ['--chunk-bytes', '512KiB'],
    ['--chunk-bytes', '512MiB'],
    ['--chunk-bytes', 'lots'],
    ['--concurrency', '0'],
    ['--concurrency', '257'],
    ['--concurrency', 'x'],
  ]) {
    bad.push(['push', KEY, url, ...flags, ...daemon.clientArgs]);
    bad.push(['import', url, ...flags, ...daemon.clientArgs]);
    bad.push(['load', url, '--out', join(tempDir(t), 'x.safetensors'), ...flags]);
    bad.push(['pull-files', url, join(tempDir(t), 'y'), ...flags]);
  }
  // Flags that do not apply: a daemon key for load, a path for import, chunks for the sglang layout.
  bad.push(['load', KEY, '--out', join(tempDir(t), 'z.safetensors'), '--chunk-bytes', '1MiB', ...daemon.clientArgs]);
  bad.push(['import', model, '--concurrency', '2', ...daemon.clientArgs]);
  bad.push(['push', KEY, url, '--layout', 'sglang', '--tp-size', '2', '--chunk-bytes', '1MiB', ...daemon.clientArgs]);
  for (const args of bad) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /TC_ERR_INVALID_ARGUMENT/, args.join(' '));
  }

  // The HTTP bodies are bounded too (a client other than the CLI).
  await assert.rejects(client.push(KEY, url, { chunkBytes: 1024 }), /TC_ERR_INVALID_ARGUMENT|chunkBytes/);
  await assert.rejects(client.importModel(url, { concurrency: 1000 }), /TC_ERR_INVALID_ARGUMENT|concurrency/);
});
