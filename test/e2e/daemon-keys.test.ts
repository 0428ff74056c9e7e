// The key grammar end to end: the longest valid key works through every route (CLI import, ls, load; HTTP
// GET/PUT/DELETE), every class of bad key is refused with TC_ERR_INVALID_ARGUMENT by the CLI, the SDK and
// the HTTP routes, and `ls` never prints control characters of a key bound before the grammar existed.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { MAX_KEY_BYTES } from '../../src/core/keys.js';
import { readSafetensorsFile } from '../../src/format/safetensors-file.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { startDaemon, startDaemonWithModel, type TestDaemon } from '../harness/daemon.js';
import { runCli } from '../helpers/cli.js';
import { controlRequest, errorCode, type HttpAnswer } from '../helpers/control-http.js';
import { tempDir } from '../helpers/tmp.js';

/** One raw HTTP request: the path is sent as given (no URL normalization of `..`). */
const raw = (d: TestDaemon, method: string, path: string, body?: object): Promise<HttpAnswer> => controlRequest(d, method, path, body);
const codeOf = errorCode;

/** The longest valid key, using every separator and every allowed punctuation character. */
const LONGEST = (() => {
  const head = 'model:org/name@rev+x=y_z.v-1:';
  return head + 'k'.repeat(MAX_KEY_BYTES - head.length);
})();

/** One key per rule of the grammar. */
const BAD_KEYS: readonly [string, string][] = [
  ['empty', ''],
  ['length', 'k'.repeat(MAX_KEY_BYTES + 1)],
  ['character (space)', 'model llama'],
  ['character (escape)', 'model\x1b[31mred'],
  ['character (newline)', 'model\nx'],
  ['character (non-ASCII)', 'modèle'],
  ['character (percent)', 'model%2F'],
  ['empty segment', 'model::v1'],
  ['trailing separator', 'model/'],
  ['dot segment', '..'],
  ['dot segment inside', 'model/../x'],
  ['single dot', '.'],
  ['reserved prefix', 'tc1:model'],
];

test('keys: the longest valid key round-trips through import, ls --json, load and key GET/PUT/DELETE', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
  assert.equal(Buffer.byteLength(LONGEST), MAX_KEY_BYTES);
  const imp = await runCli(['import', model, '--key', LONGEST, '--json', ...d.clientArgs]);
  assert.equal(imp.code, 0, imp.stderr);
  const imported = JSON.parse(imp.stdout) as { artifactId: string; key: { key: string; version: number } };
  assert.deepEqual([imported.key.key, imported.key.version], [LONGEST, 1]);
  const ls = JSON.parse((await runCli(['ls', '--json', ...d.clientArgs])).stdout) as { artifacts: { keys: { key: string }[] }[] };
  assert.deepEqual(
    ls.artifacts.flatMap((a) => a.keys.map((k) => k.key)),
    [LONGEST],
  );
  const out = join(dir, 'out.safetensors');
  const load = await runCli(['load', LONGEST, '--out', out, '--tp-size', '2', '--tp-rank', '1', '--json', ...d.clientArgs]);
  assert.equal(load.code, 0, load.stderr);
  assert.equal((await readSafetensorsFile(out)).header.tensors.length, 21);

  const path = `/v1/keys/${encodeURIComponent(LONGEST)}`;
  const got = await raw(d, 'GET', path);
  assert.equal(got.status, 200, JSON.stringify(got.json));
  assert.equal((got.json as { artifactId: string }).artifactId, imported.artifactId);
  const put = await raw(d, 'PUT', path, { artifactId: imported.artifactId, expectedVersion: 1 });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  assert.equal((put.json as { version: number }).version, 2);
  const del = await raw(d, 'DELETE', `${path}?expectedVersion=2`);
  assert.equal(del.status, 200, JSON.stringify(del.json));
  assert.equal((await raw(d, 'GET', path)).status, 404);
});

test('keys: every class of bad key is refused with TC_ERR_INVALID_ARGUMENT by the CLI (exit 2), the SDK and HTTP', async (t) => {
  const { dir, model, daemon: d, client } = await startDaemonWithModel(t);
  const { artifactId } = await client.importModel(model, { key: 'model:good:v1' });
  for (const [rule, key] of BAD_KEYS) {
    const cli = await runCli(['import', model, '--key', key, ...d.clientArgs]);
    assert.equal(cli.code, 2, `CLI import, ${rule}: ${cli.stderr}`);
    assert.match(cli.stderr, /TC_ERR_INVALID_ARGUMENT/, `CLI import, ${rule}`);
    assert.ok(!cli.stderr.includes('\x1b'), `CLI import, ${rule}: the message prints no escape`);
    await assert.rejects(client.importModel(model, { key }), { code: 'TC_ERR_INVALID_ARGUMENT' }, `SDK importModel, ${rule}`);
    if (!key.startsWith('tc1:')) {
      // An artifact id passes through resolve() by design; every other bad key is refused before any request.
      await assert.rejects(client.resolve(key), { code: 'TC_ERR_INVALID_ARGUMENT' }, `SDK resolve, ${rule}`);
      await assert.rejects(client.load(key), { code: 'TC_ERR_INVALID_ARGUMENT' }, `SDK load, ${rule}`);
      const load = await runCli(['load', key, '--out', join(dir, 'x.safetensors'), ...d.clientArgs]);
      assert.equal(load.code, 2, `CLI load, ${rule}: ${load.stderr}`);
    }
    const imp = await raw(d, 'POST', '/v1/imports', { path: model, key });
    assert.deepEqual([imp.status, codeOf(imp.json)], [400, 'TC_ERR_INVALID_ARGUMENT'], `POST /v1/imports, ${rule}`);
    const { json: upload } = await raw(d, 'POST', '/v1/uploads');
    const commit = await raw(d, 'POST', `/v1/uploads/${(upload as { uploadId: string }).uploadId}/commit`, { key });
    assert.deepEqual([commit.status, codeOf(commit.json)], [400, 'TC_ERR_INVALID_ARGUMENT'], `upload commit, ${rule}`);
    if (key === '') continue; // no route has an empty path segment
    // `..` and `.` are sent as they are (a browser-style URL would fold them away).
    const path = `/v1/keys/${key === '..' || key === '.' ? key : encodeURIComponent(key)}`;
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { artifactId }],
      ['DELETE', undefined],
    ] as const) {
      const r = await raw(d, method, path, body);
      assert.deepEqual([r.status, codeOf(r.json)], [400, 'TC_ERR_INVALID_ARGUMENT'], `${method} /v1/keys/:key, ${rule}`);
    }
  }
  const keys = (await raw(d, 'GET', '/v1/keys')).json as { keys: { key: string }[] };
  assert.deepEqual(
    keys.keys.map((k) => k.key),
    ['model:good:v1'],
    'no bad key was bound',
  );
});

test('keys: ls never prints raw control characters, and a key bound before the grammar can still be deleted', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
  const imp = await runCli(['import', model, '--key', 'ok', '--json', ...d.clientArgs]);
  const { artifactId } = JSON.parse(imp.stdout) as { artifactId: string };
  // A key from an older catalog, written behind the daemon's back (WAL lets both processes in).
  const legacy = 'old\x1b[2J\x07key\u202e';
  const db = new Database(join(d.dataDir, 'catalog.db'));
  try {
    db.prepare('INSERT INTO keys VALUES (?, ?, 1, ?)').run(legacy, artifactId, Date.now());
  } finally {
    db.close();
  }
  const ls = await runCli(['ls', ...d.clientArgs]);
  assert.equal(ls.code, 0, ls.stderr);
  const unsafe = [...ls.stdout].filter((c) => c !== '\n' && (c < ' ' || c > '~'));
  assert.deepEqual(unsafe, [], 'no control, non-ASCII or bidi character printed');
  assert.match(ls.stdout, /old\\u\{1b\}\[2J\\u\{7\}key\\u\{202e\}/);
  const del = await raw(d, 'DELETE', `/v1/keys/${encodeURIComponent(legacy)}`);
  assert.equal(del.status, 200, JSON.stringify(del.json));
});
