// The connector contract on a temporary directory (file://), plus what is the file connector's own: URL
// forms, objects as plain files, temporary files of writes, and files changed behind the connector's back.

import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createConnector } from '../../src/connectors/create-connector.js';
import { fileRoot } from '../../src/connectors/file/file-paths.js';
import { tempDir } from '../helpers/tmp.js';
import { pattern, read, rejectsWith, runConnectorContract } from './connector-contract.js';

runConnectorContract('file', {
  freshUrl: (t) => Promise.resolve(pathToFileURL(tempDir(t)).href),
  missingContainerUrl: (t) => Promise.resolve(pathToFileURL(join(tempDir(t), 'no-such-dir')).href),
  atomicRewrites: true,
});

test('file connector: URL forms', () => {
  assert.equal(fileRoot('file:///var/models/llama/'), '/var/models/llama');
  assert.equal(fileRoot('file://localhost/tmp/x'), '/tmp/x');
  assert.equal(fileRoot('file:///a%20b'), '/a b');
  assert.equal(fileRoot('file:///'), '/');
  for (const bad of ['file://host/x', 'file:///x?y=1', 'file:///x#f', 'http://x/y', 'not a url']) {
    assert.throws(() => fileRoot(bad), { code: 'TC_ERR_INVALID_ARGUMENT' }, bad);
  }
});

test('file connector: objects are plain files under the directory; a write needs no directory beforehand', async (t) => {
  const dir = join(tempDir(t), 'created', 'on', 'write');
  const c = await createConnector(pathToFileURL(dir).href);
  t.after(() => c.close());
  assert.equal(c.displayUrl, `file://${dir}`);
  const data = pattern(3000, 1);
  await c.write('sub/dir/model.safetensors', data);
  assert.deepEqual(readFileSync(join(dir, 'sub', 'dir', 'model.safetensors')), data);
  // A file put there by other means is an object too.
  writeFileSync(join(dir, 'config.json'), '{"a":1}');
  assert.deepEqual(
    (await c.list()).map((o) => [o.key, o.size]),
    [
      ['config.json', 7],
      ['sub/dir/model.safetensors', 3000],
    ],
  );
  // A key whose path runs through a file, or onto a directory, collides.
  await rejectsWith(c.write('config.json/x', data), 'TC_ERR_INVALID_ARGUMENT', /collides/);
  await rejectsWith(c.write('sub/dir', data), 'TC_ERR_INVALID_ARGUMENT', /collides/);
  await rejectsWith(c.stat('sub/dir'), 'TC_ERR_NOT_FOUND');
});

test('file connector: temporary files of writes are never listed, and their names are reserved', async (t) => {
  const dir = tempDir(t);
  const c = await createConnector(pathToFileURL(dir).href);
  t.after(() => c.close());
  await c.write('a.bin', pattern(10));
  writeFileSync(join(dir, '.tc-tmp-0123456789abcdef'), 'half-written');
  assert.deepEqual(
    (await c.list()).map((o) => o.key),
    ['a.bin'],
  );
  await rejectsWith(c.write('.tc-tmp-0123456789abcdef', pattern(1)), 'TC_ERR_INVALID_ARGUMENT', /reserved/);
  await rejectsWith(c.stat('x/.tc-tmp-ab'), 'TC_ERR_INVALID_ARGUMENT', /reserved/);
});

test('file connector: a file truncated after stat is TC_ERR_SOURCE_CHANGED with the etag, TC_ERR_SHORT_READ without', async (t) => {
  const dir = tempDir(t);
  const c = await createConnector(pathToFileURL(dir).href);
  t.after(() => c.close());
  const data = pattern(100_000, 2);
  const info = await c.write('shard.safetensors', data);
  truncateSync(join(dir, 'shard.safetensors'), 50_000);
  await rejectsWith(read(c, 'shard.safetensors', 0, 10, info.etag), 'TC_ERR_SOURCE_CHANGED');
  await rejectsWith(read(c, 'shard.safetensors', 40_000, 20_000), 'TC_ERR_SHORT_READ', /50000 bytes/);
  assert.deepEqual(await read(c, 'shard.safetensors', 40_000, 10_000), data.subarray(40_000, 50_000));
  // Rewritten in place with the same size (another tool): the etag moves with the mtime or inode.
  const now = await c.stat('shard.safetensors');
  await new Promise((resolve) => setTimeout(resolve, 20));
  writeFileSync(join(dir, 'shard.safetensors'), pattern(50_000, 3));
  await rejectsWith(read(c, 'shard.safetensors', 0, 10, now.etag), 'TC_ERR_SOURCE_CHANGED');
});
