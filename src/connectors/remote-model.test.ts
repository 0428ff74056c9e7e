// openRemoteModel and ConnectorSource on the file:// connector (a real directory): the same index and the
// same rejections as a local import, TP views materialized byte for byte as from files while only the
// rank's bytes move, and a rewritten object failing with TC_ERR_SOURCE_CHANGED.

import assert from 'node:assert/strict';
import { readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.js';
import { FileSource } from '../bytes/file-source.js';
import { Materializer } from '../bytes/materialize.js';
import { openModelFiles } from '../format/model-files.js';
import { TINY_LLAMA, writeSyntheticModel } from '../format/synthetic-model.js';
import { indexModelFiles } from '../layout/canonical-index.js';
import { compileProgram } from '../layout/program.js';
import { selectView } from '../layout/selection.js';
import { ConnectorSource } from './connector-source.js';
import { createConnector } from './create-connector.js';
import { indexRemoteModel, openRemoteModel } from './remote-model.js';

async function model(t: TestContext): Promise<{ dir: string; url: string }> {
  const dir = join(tempDir(t), 'm');
  await writeSyntheticModel(dir, TINY_LLAMA);
  writeFileSync(join(dir, 'tokenizer.json'), '{}');
  return { dir, url: pathToFileURL(dir).toString() };
}

const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (e: { code?: string }) => e.code ?? 'uncoded',
  );

test('openRemoteModel: the same shards, kept files and canonical index as a local import', async (t) => {
  const { dir, url } = await model(t);
  const c = await createConnector(url);
  t.after(() => c.close());
  const remote = await openRemoteModel(c);
  const local = await openModelFiles(dir);
  assert.deepEqual(
    remote.shards.map((s) => [s.file, s.fileByteLength]),
    local.shards.map((s) => [s.file, s.fileByteLength]),
  );
  assert.deepEqual([...remote.extraFiles].sort(), [...local.extraFiles].sort());
  assert.deepEqual(
    remote.objects.map((o) => o.key),
    [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
    ],
  );
  assert.equal(indexRemoteModel(remote).indexHash, indexModelFiles(local).indexHash);
});

test('openRemoteModel: bad models fail with the codes of a local import', async (t) => {
  const { dir, url } = await model(t);
  const c = await createConnector(url);
  t.after(() => c.close());
  const shard = join(dir, 'model-00002-of-00002.safetensors');
  const bytes = readFileSync(shard);
  truncateSync(shard, bytes.length - 1);
  assert.equal(await codeOf(openRemoteModel(c)), await codeOf(openModelFiles(dir)));
  assert.equal(await codeOf(openRemoteModel(c)), 'TC_ERR_FORMAT_INCOMPLETE_BUFFER');
  renameSync(shard, `${shard}.gone`);
  assert.equal(await codeOf(openRemoteModel(c)), 'TC_ERR_NOT_FOUND');
  const empty = await createConnector(pathToFileURL(join(dir, 'nothing')).toString());
  t.after(() => empty.close());
  assert.equal(await codeOf(openRemoteModel(empty)), 'TC_ERR_NOT_FOUND');
  writeFileSync(join(dir, 'model.safetensors.index.json'), '{"weight_map": {"a": "../x.safetensors"}}');
  assert.equal(await codeOf(openRemoteModel(c)), 'TC_ERR_FORMAT_INDEX_INVALID');
});

test('ConnectorSource: TP ranks equal the file source byte for byte and fetch only their rows', async (t) => {
  const { dir, url } = await model(t);
  const c = await createConnector(url);
  const remote = await openRemoteModel(c);
  const index = indexRemoteModel(remote);
  const source = ConnectorSource.fromIndex(
    c,
    index,
    remote.shards.map((s) => s.etag),
  );
  const files = FileSource.fromIndex(dir, index);
  t.after(async () => {
    await source.close();
    await files.close();
  });
  const config = (): Promise<unknown> => Promise.resolve(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const m = new Materializer({ concurrency: 8 });
  for (const tp of [1, 2, 4]) {
    for (let rank = 0; rank < tp; rank++) {
      const program = compileProgram(await selectView(index, tp === 1 ? {} : { tp: { size: tp, rank } }, config));
      const want = Buffer.alloc(program.totalBytes);
      await m.run(program, files, want);
      const before = source.bytesRead;
      const got = Buffer.alloc(program.totalBytes);
      await m.run(program, source, got);
      assert.ok(got.equals(want), `tp ${tp} rank ${rank}`);
      const moved = source.bytesRead - before;
      assert.ok(moved <= program.totalBytes, `tp ${tp} rank ${rank}: moved ${moved} for ${program.totalBytes} bytes of output`);
      if (tp === 4) assert.ok(moved < index.totalBytes * 0.3, `a TP=4 rank moves about a quarter (${moved} of ${index.totalBytes})`);
    }
  }
});

test('ConnectorSource: an object rewritten after indexing fails with TC_ERR_SOURCE_CHANGED', async (t) => {
  const { dir, url } = await model(t);
  const c = await createConnector(url);
  const remote = await openRemoteModel(c);
  const index = indexRemoteModel(remote);
  const source = ConnectorSource.fromIndex(
    c,
    index,
    remote.shards.map((s) => s.etag),
  );
  t.after(() => source.close());
  const shard = join(dir, remote.shards[0]!.file);
  const bytes = readFileSync(shard);
  rmSync(shard);
  writeFileSync(shard, bytes);
  const out = Buffer.alloc(index.totalBytes);
  assert.equal(await codeOf(source.read(0, out)), 'TC_ERR_SOURCE_CHANGED');
});
