// `tensorcast ls` says which view each replica holds: the canonical artifact or a view by its id, in
// --json (viewId, null for canonical) and in the table.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startDaemon } from '../harness/daemon.js';
import { tempDir } from '../helpers/tmp.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';

interface LsJson {
  artifacts: { artifactId: string; keys: { key: string }[]; replicas: { viewId: string | null; tier: string }[] }[];
}

test('ls: each replica names its view (viewId or canonical)', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'tiny');
  await writeSyntheticModel(model, TINY_LLAMA);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
  assert.equal((await runCli(['import', model, '--key', 'm', ...d.clientArgs])).code, 0);
  let viewId = '';
  // A view read a second time gets a memory replica (replica admission `reuse`).
  for (let i = 0; i < 2; i++) {
    const out = join(dir, `r${i}.safetensors`);
    const load = await runCli(['load', 'm', '--out', out, '--tp-size', '2', '--tp-rank', '1', '--json', ...d.clientArgs]);
    assert.equal(load.code, 0, load.stderr);
    viewId = (JSON.parse(load.stdout) as { viewId: string }).viewId;
  }
  assert.match(viewId, /^[0-9a-f]{64}$/);
  const json = JSON.parse((await runCli(['ls', '--json', ...d.clientArgs])).stdout) as LsJson;
  const replicas = json.artifacts[0]!.replicas;
  assert.ok(
    replicas.some((r) => r.viewId === null && r.tier === 'disk'),
    JSON.stringify(replicas),
  );
  assert.ok(
    replicas.some((r) => r.viewId === viewId && r.tier === 'memory'),
    JSON.stringify(replicas),
  );
  const table = await runCli(['ls', ...d.clientArgs]);
  assert.equal(table.code, 0, table.stderr);
  assert.ok(table.stdout.includes('canonical') && table.stdout.includes(viewId.slice(0, 12)), table.stdout);
});
