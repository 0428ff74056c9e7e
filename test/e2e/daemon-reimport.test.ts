// The artifact id covers the files kept with the weights: re-importing the same weights with another
// config.json is a new artifact (sharing the weight files on disk), TP loads use the config imported with
// it, and re-importing an unchanged model stores nothing. `inspect --id` agrees with the daemon.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from '../../src/client/tensorcast-client.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { startDaemon } from '../harness/daemon.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

interface Imported {
  artifactId: string;
  created: boolean;
  via: string;
  key: { version: number };
}

test('re-import with a changed config.json: a new id, TP loads and file fetches use the new config; unchanged re-import stores nothing', async (t) => {
  const root = tempDir(t);
  const model = join(root, 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  const d = await startDaemon(t, { extraArgs: ['--import-root', root] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  const inspectId = async (): Promise<string> => {
    const r = await runCli(['inspect', model, '--id', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { artifactId: string }).artifactId;
  };
  const importJson = async (...extra: string[]): Promise<Imported> => {
    const r = await runCli(['import', model, '--key', 'model:m', '--json', ...extra, ...d.clientArgs]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Imported;
  };
  const slice = async (name: string): Promise<Buffer> => {
    const out = join(root, name);
    const r = await runCli(['slice', model, '--tp-size', '2', '--tp-rank', '0', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(out);
  };

  const oldConfig = readFileSync(join(model, 'config.json'));
  const oldSlice = await slice('old.safetensors');
  const first = await importJson();
  assert.equal(first.artifactId, await inspectId(), 'inspect --id agrees with the daemon');
  assert.equal(first.created, true);

  // Same weights, another head layout: the TP split of the attention tensors changes.
  const config = JSON.parse(oldConfig.toString()) as Record<string, unknown>;
  const newConfig = Buffer.from(`${JSON.stringify({ ...config, num_attention_heads: 4, num_key_value_heads: 1 }, null, 2)}\n`);
  writeFileSync(join(model, 'config.json'), newConfig);
  const newSlice = await slice('new.safetensors');
  assert.notDeepEqual(newSlice, oldSlice, 'the test needs a config change that TP layouts see');

  const second = await importJson();
  assert.notEqual(second.artifactId, first.artifactId, 'a changed config.json is a new artifact');
  assert.equal(second.artifactId, await inspectId(), 'inspect --id agrees with the daemon');
  assert.deepEqual([second.created, second.key.version], [true, 2]);
  const out = join(root, 'loaded.safetensors');
  const load = await runCli(['load', 'model:m', '--tp-size', '2', '--tp-rank', '0', '--out', out, ...d.clientArgs]);
  assert.equal(load.code, 0, load.stderr);
  assert.deepEqual(readFileSync(out), newSlice, 'load --tp-size splits by the config imported with the weights');
  assert.deepEqual(await client.file(second.artifactId, 'config.json'), newConfig);
  assert.deepEqual(await client.file(first.artifactId, 'config.json'), oldConfig, 'the first artifact keeps its own config');

  // The weight files are stored once: the second artifact's shards are hard links to the first's.
  const artifacts = join(d.dataDir, 'artifacts');
  const dirOf = (id: string): string => join(artifacts, id.replace(':', '-'));
  for (const shard of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
    assert.equal(statSync(join(dirOf(second.artifactId), shard)).ino, statSync(join(dirOf(first.artifactId), shard)).ino, shard);
  }

  // Unchanged re-imports (in place and uploaded) give the same id and store nothing.
  const stored = readdirSync(artifacts).filter((n) => !n.startsWith('.'));
  for (const via of ['path', 'upload']) {
    const again = await importJson('--via', via);
    assert.deepEqual([again.artifactId, again.created, again.via, again.key.version], [second.artifactId, false, via, 2]);
  }
  assert.deepEqual(
    readdirSync(artifacts).filter((n) => !n.startsWith('.')),
    stored,
  );
  assert.equal(stored.length, 2);
});
