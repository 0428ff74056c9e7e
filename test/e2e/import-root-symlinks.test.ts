// --import-root confinement against a real daemon: a linked directory, a linked shard, a linked index or a
// linked config file leading outside the roots is refused with TC_ERR_FORBIDDEN naming the file; links that
// stay inside the roots (the Hugging Face cache layout) import, config included.

import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';

/** POST /v1/imports; resolves with the status and body. */
async function importVia(d: TestDaemon, path: string): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const res = await fetch(`${d.controlUrl}/v1/imports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ path }),
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

test('import roots: symbolic links leading outside are refused, file by file; links inside are followed', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  const outside = join(dir, 'outside');
  mkdirSync(root);
  await writeSyntheticModel(join(outside, 'model'), { ...TINY_LLAMA, shards: 2 });
  await writeSyntheticModel(join(root, 'own'), TINY_LLAMA);
  writeFileSync(join(outside, 'secret.json'), '{"secret": true}');
  const d = await startDaemon(t, { extraArgs: ['--import-root', root] });
  const shards = readdirSync(join(outside, 'model')).filter((f) => f.endsWith('.safetensors'));

  // A linked directory.
  symlinkSync(join(outside, 'model'), join(root, 'linked-dir'));
  // A directory inside whose shards, index or config link outside.
  const cases: [string, string][] = [];
  for (const file of [shards[0]!, 'model.safetensors.index.json', 'config.json']) {
    const m = join(root, `link-${file.replace(/\W/g, '_')}`);
    mkdirSync(m);
    for (const f of readdirSync(join(outside, 'model'))) {
      if (f === file) symlinkSync(join(outside, 'model', f), join(m, f));
      else writeFileSync(join(m, f), readFileSync(join(outside, 'model', f)));
    }
    cases.push([m, join(m, file)]);
  }
  // A single linked .safetensors file.
  symlinkSync(join(outside, 'model', shards[1]!), join(root, 'one.safetensors'));
  cases.push([join(root, 'linked-dir'), join(root, 'linked-dir')], [join(root, 'one.safetensors'), join(root, 'one.safetensors')]);

  for (const [path, named] of cases) {
    const r = await importVia(d, path);
    assert.equal(r.status, 403, `${path}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error?.code, 'TC_ERR_FORBIDDEN');
    assert.ok(r.body.error.message.includes(named), `${r.body.error.message} names ${named}`);
  }
  // Nothing was stored, no staging left behind.
  const list = (await (await fetch(`${d.controlUrl}/v1/artifacts`, { headers: { authorization: `Bearer ${d.token}` } })).json()) as {
    artifacts: unknown[];
  };
  assert.equal(list.artifacts.length, 0);
  assert.deepEqual(
    readdirSync(join(d.dataDir, 'artifacts')).filter((n) => n.startsWith('.staging-')),
    [],
  );

  // The Hugging Face cache layout: snapshot files are links into blobs/, all under the root.
  const hf = join(root, 'hf');
  mkdirSync(join(hf, 'blobs'), { recursive: true });
  mkdirSync(join(hf, 'snapshots', 'rev'), { recursive: true });
  for (const f of readdirSync(join(root, 'own'))) {
    renameSync(join(root, 'own', f), join(hf, 'blobs', `blob-${f}`));
    symlinkSync(`../../blobs/blob-${f}`, join(hf, 'snapshots', 'rev', f));
  }
  const ok = await importVia(d, join(hf, 'snapshots', 'rev'));
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const stored = (await (await fetch(`${d.controlUrl}/v1/artifacts`, { headers: { authorization: `Bearer ${d.token}` } })).json()) as {
    artifacts: { files: string[] }[];
  };
  assert.deepEqual(stored.artifacts[0]?.files, ['config.json']);
});
