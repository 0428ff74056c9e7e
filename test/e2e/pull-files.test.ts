// End to end: pullFiles and `tensorcast pull-files` against each connector on a real backend (a directory,
// Redis, the S3-compatible test server): the default pulls everything but the weights, patterns pick files,
// every file lands whole, and a failing object leaves neither a partial file nor a temporary one behind.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createClient } from 'redis';
import { pullFiles } from '../../src/client/pull-files.js';
import { createConnector } from '../../src/connectors/create-connector.js';
import { pattern } from '../contract/connector-contract.js';
import { redisConnectorUrl, s3ConnectorUrl } from '../harness/services.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

/** A model directory's objects: config and tokenizer files, a nested file, and two weight shards. */
const MODEL: Record<string, Buffer> = {
  'config.json': Buffer.from('{"model_type":"llama","hidden_size":256}\n'),
  'tokenizer.json': Buffer.from(`{"vocab":"${'x'.repeat(5000)}"}`),
  'tokenizer.model': pattern(3000, 7),
  'tokenizer/merges.txt': Buffer.from('a b\nc d\n'),
  'model.safetensors.index.json': Buffer.from('{"weight_map":{}}'),
  'model-00001-of-00002.safetensors': pattern(300_000, 1),
  'model-00002-of-00002.safetensors': pattern(200_000, 2),
};

/** Every file under `dir` (relative, '/'-separated), sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) =>
      join(e.parentPath, e.name)
        .slice(dir.length + 1)
        .split('\\')
        .join('/'),
    )
    .sort();
}

async function writeModel(url: string): Promise<void> {
  const c = await createConnector(url, { chunkBytes: 64 * 1024 });
  try {
    for (const [key, bytes] of Object.entries(MODEL)) await c.write(key, bytes);
  } finally {
    await c.close();
  }
}

const BACKENDS: [string, (t: TestContext) => Promise<string | undefined>][] = [
  ['file', (t) => Promise.resolve(pathToFileURL(tempDir(t)).href)],
  ['redis', redisConnectorUrl],
  ['s3', s3ConnectorUrl],
];

for (const [name, freshUrl] of BACKENDS) {
  test(`pull-files (${name}): default is everything but the weights; --allow/--ignore pick; bytes are whole`, async (t) => {
    const url = await freshUrl(t);
    if (url === undefined) return;
    await writeModel(url);
    const dest = join(tempDir(t), 'out');
    const seen: number[] = [];
    const info = await pullFiles(url, { dest, onProgress: (done) => seen.push(done) });
    const want = ['config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer.model', 'tokenizer/merges.txt'];
    assert.deepEqual(filesUnder(dest), want);
    assert.deepEqual(info.files.map((f) => f.name).sort(), want);
    for (const f of want) assert.ok(readFileSync(join(dest, f)).equals(MODEL[f]!), f);
    assert.equal(
      info.bytes,
      want.reduce((n, f) => n + MODEL[f]!.length, 0),
    );
    assert.equal(seen.at(-1), info.bytes);

    // The CLI: repeatable --allow and --ignore, JSON output; the weights come when an --allow names them.
    const cliDest = join(tempDir(t), 'cli');
    const r = await runCli(['pull-files', url, cliDest, '--allow', '*.safetensors', '--allow', '*.json', '--ignore', 'model.*', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { files: { name: string; bytes: number }[]; url: string };
    const picked = ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'tokenizer.json'];
    assert.deepEqual(filesUnder(cliDest), picked);
    assert.deepEqual(out.files.map((f) => f.name).sort(), picked);
    for (const f of picked) assert.ok(readFileSync(join(cliDest, f)).equals(MODEL[f]!), f);

    // Nothing matches: a clear not-found, exit 2.
    const none = await runCli(['pull-files', url, join(tempDir(t), 'none'), '--allow', '*.gguf']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /TC_ERR_NOT_FOUND.*no file matches/);
  });
}

test('pull-files (redis): an object that cannot be read leaves no partial or temporary file; the password never shows', async (t) => {
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  await writeModel(url);
  // Rewrite tokenizer.model in 1 KiB chunks (3 of them), then drop its last chunk behind the connector's back.
  const c = await createConnector(url, { chunkBytes: 1024 });
  await c.write('tokenizer.model', MODEL['tokenizer.model']!);
  await c.close();
  const u = new URL(url);
  const prefix = u.pathname.slice(1);
  const raw = createClient({ socket: { host: u.hostname, port: Number(u.port || 6379) }, database: Number(u.searchParams.get('db') ?? 0) });
  raw.on('error', () => undefined);
  await raw.connect();
  t.after(() => raw.destroy());
  const chunks = (await raw.keys(`${prefix}/.tc/c/*`)).filter((k) => /\/2$/.test(k));
  const manifest = JSON.parse((await raw.get(`${prefix}/.tc/m/tokenizer.model`))!) as { version: string };
  const victim = chunks.find((k) => k.includes(manifest.version));
  assert.ok(victim !== undefined);
  await raw.del(victim);
  const dest = join(tempDir(t), 'out');
  await assert.rejects(pullFiles(url, { dest }), (e: Error & { code?: string }) => e.code === 'TC_ERR_SHORT_READ');
  // Files before it in key order are complete; the broken one and everything after it are absent.
  assert.deepEqual(filesUnder(dest), ['config.json', 'model.safetensors.index.json', 'tokenizer.json']);

  // A wrong password: TC_ERR_AUTH or a connection refusal, and the CLI's stderr never shows it.
  const withPassword = new URL(url);
  withPassword.password = 'hunter22-secret';
  const r = await runCli(['pull-files', withPassword.toString(), join(tempDir(t), 'pw')]);
  assert.notEqual(r.code, 0);
  assert.ok(!r.stderr.includes('hunter22-secret'), r.stderr);
});
