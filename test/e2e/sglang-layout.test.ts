// End to end: `tensorcast push KEY redis://host:port/<model> --layout sglang --tp-size N` against a real daemon
// and a real Redis, checked with the reference libraries (safetensors + torch) the way SGLang's
// RemoteModelLoader reads the layout: exact key names per rank, fused parameters, one-tensor values byte for
// byte as safetensors.torch.save writes them, equal to torch slicing of the original weights; files as
// UTF-8 strings; a later push replaces the model's keys at once; bad input is a clear coded error.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { createClient, RESP_TYPES } from 'redis';
import { startDaemonWithModel } from '../harness/daemon.js';
import { redisConnectorUrl } from '../harness/services.js';
import { fixture, runCli } from '../helpers/cli.js';
import { missingPython, pythonWith } from '../helpers/python.js';
import { skipOrFail } from '../helpers/require.js';
import { tempDir } from '../helpers/tmp.js';

const KEY = 'model:tiny:v1';
const PY_MODULES = ['safetensors', 'torch'];

/** The parameter names of SGLang's LlamaForCausalLM state dict (untied embeddings, no biases). */
function sglangParamNames(layers: number): string[] {
  const names = ['model.embed_tokens.weight', 'lm_head.weight', 'model.norm.weight'];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}.`;
    names.push(
      `${p}input_layernorm.weight`,
      `${p}post_attention_layernorm.weight`,
      `${p}self_attn.qkv_proj.weight`,
      `${p}self_attn.o_proj.weight`,
      `${p}mlp.gate_up_proj.weight`,
      `${p}mlp.down_proj.weight`,
    );
  }
  return names;
}

/** A raw Redis client on the server of a connector URL, replies as Buffers. */
async function rawRedis(url: string) {
  const u = new URL(url);
  const client = createClient({
    socket: { host: u.hostname, port: Number(u.port || 6379) },
    database: Number(u.searchParams.get('db') ?? 0),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

test('push --layout sglang: the per-rank keys, fused params and one-tensor values SGLang reads, equal to torch slicing', async (t) => {
  const py = pythonWith(PY_MODULES);
  if (py === undefined) return skipOrFail(t, missingPython(PY_MODULES));
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  const { client, model, daemon } = await startDaemonWithModel(t);
  await client.importModel(model, { key: KEY });
  const name = new URL(url).pathname.slice(1);
  const raw = await rawRedis(url);
  t.after(() => raw.destroy());
  const bytes = raw.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  // Leftovers of an earlier push (another TP size, an old file) that the new layout replaces.
  await raw.set(`${name}/keys/rank_3/model.norm.weight`, 'stale');
  await raw.set(`${name}/files/old_tokenizer.json`, '{}');
  // An object of tensorcast's own Redis connector under the same prefix stays.
  await raw.set(`${name}/.tc/m/unrelated`, 'kept');

  const r = await runCli(['push', KEY, url, '--layout', 'sglang', '--tp-size', '2', '--json', ...daemon.clientArgs]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { keys: number; model: string; tpSize: number; files: string[]; removed: number; url: string };
  const params = sglangParamNames(2);
  assert.equal(info.model, name);
  assert.equal(info.keys, 2 * params.length);
  assert.deepEqual(info.files, ['config.json']);
  assert.equal(info.removed, 2);

  // The exact key set: SGLang's names per rank, the files, and nothing else of ours (no staging keys).
  const keys = (await raw.keys(`${name}/*`)).sort();
  const want = [
    ...[0, 1].flatMap((rank) => params.map((p) => `${name}/keys/rank_${rank}/${p}`)),
    `${name}/files/config.json`,
    `${name}/.tc/m/unrelated`,
  ].sort();
  assert.deepEqual(keys, want);
  for (const k of keys) {
    if (k.includes('/keys/')) assert.equal(await raw.ttl(k), -1, `${k} must not expire`);
  }

  // Hand the values to python on disk (python's redis package may be missing), named as the keys.
  const values = tempDir(t);
  for (const k of keys.filter((x) => !x.includes('/.tc/'))) {
    const path = join(values, ...k.slice(name.length + 1).split('/'));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, (await bytes.get(k))!);
  }
  assert.equal(readFileSync(join(values, 'files', 'config.json'), 'utf8'), readFileSync(join(model, 'config.json'), 'utf8'));
  const check = spawnSync(py, [fixture('check_sglang_layout.py'), model, values, '2'], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  assert.equal(check.stdout.trim(), `ok ${2 * params.length + 1}`);

  // A push at TP 1 replaces the layout: rank_1 is gone, rank_0 holds whole tensors.
  const again = await runCli(['push', KEY, url, '--layout', 'sglang', '--tp-size', '1', '--json', ...daemon.clientArgs]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as { removed: number }).removed, params.length);
  const after = (await raw.keys(`${name}/keys/*`)).sort();
  assert.deepEqual(after, params.map((p) => `${name}/keys/rank_0/${p}`).sort());
  const values1 = tempDir(t);
  for (const k of [...after, `${name}/files/config.json`]) {
    const path = join(values1, ...k.slice(name.length + 1).split('/'));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, (await bytes.get(k))!);
  }
  const check1 = spawnSync(py, [fixture('check_sglang_layout.py'), model, values1, '1'], { encoding: 'utf8' });
  assert.equal(check1.status, 0, check1.stderr);
});

test('push: bad input is a coded error and writes nothing', async (t) => {
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  const { client, model, daemon } = await startDaemonWithModel(t);
  await client.importModel(model, { key: KEY });
  const raw = await rawRedis(url);
  t.after(() => raw.destroy());
  const name = new URL(url).pathname.slice(1);
  const cases: [string[], RegExp][] = [
    [[KEY, url, '--tp-size', '2'], /TC_ERR_INVALID_ARGUMENT.*--layout sglang/],
    [[KEY, url, '--layout', 'sglang'], /TC_ERR_INVALID_ARGUMENT.*--tp-size/],
    [[KEY, url, '--layout', 'sglang', '--tp-size', '0'], /TC_ERR_INVALID_ARGUMENT.*--tp-size/],
    [[KEY, url, '--layout', 'other', '--tp-size', '2'], /TC_ERR_INVALID_ARGUMENT.*--layout/],
    [[KEY, 's3://bucket/model', '--layout', 'sglang', '--tp-size', '2'], /TC_ERR_INVALID_ARGUMENT.*redis:\/\//],
    [[KEY, url, '--layout', 'sglang', '--tp-size', '3'], /TC_ERR_LAYOUT_/],
    [['model:nope:v1', url, '--layout', 'sglang', '--tp-size', '2'], /TC_ERR_NOT_FOUND/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(['push', ...args, ...daemon.clientArgs]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  const noModel = new URL(url);
  noModel.pathname = '/';
  const r = await runCli(['push', KEY, noModel.toString(), '--layout', 'sglang', '--tp-size', '2', ...daemon.clientArgs]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /TC_ERR_INVALID_ARGUMENT.*model/);
  assert.deepEqual(await raw.keys(`${name}/*`), [], 'nothing written, no staging keys left');
});
