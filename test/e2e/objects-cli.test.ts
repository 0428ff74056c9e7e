// `tensorcast objects ls` and `tensorcast objects rm` against a real daemon: the listing and its total, JSON,
// a namespace's objects only with its store token, and rm's per-key lines and exit codes.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { ObjectMeta } from '../../src/protocol/http/objects.js';
import { startDaemon } from '../harness/daemon.js';
import { runCli } from '../helpers/cli.js';
import { controlRequest } from '../helpers/control-http.js';
import { ObjectWire } from '../helpers/object-wire.js';

test('objects cli: ls lists key, size, version, tier and a total; --json; rm deletes per key with stable exit codes', async (t) => {
  const d = await startDaemon(t);
  const w = await ObjectWire.open(d.dataAddress, d.token);
  t.after(() => w.close());
  const a = await w.put({ key: 'cli/a' }, randomBytes(1000));
  assert.ok(a.ok);
  assert.ok((await w.put({ key: 'cli/b/c' }, randomBytes(24))).ok);
  assert.ok((await w.put({ key: 'other/x' }, randomBytes(5))).ok);
  await controlRequest(d, 'PUT', '/v1/namespaces/sec', { token: 'sesame-0123456789' });
  assert.ok((await w.put({ key: 'sec/s', storeToken: 'sesame-0123456789' }, randomBytes(7))).ok);

  const ls = await runCli(['objects', 'ls', 'cli/', ...d.clientArgs]);
  assert.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trim().split('\n');
  assert.match(lines[0]!, /^KEY\s+SIZE\s+VERSION\s+TIER\s+LOST$/);
  assert.match(lines[1]!, new RegExp(`^cli/a\\s+1000 B\\s+${a.version}\\s+memory\\s+-$`));
  assert.match(lines[2]!, /^cli\/b\/c\s/);
  assert.equal(lines[3], '2 objects, 1.0 KiB (1024 bytes)');

  const json = await runCli(['objects', 'ls', '--json', ...d.clientArgs]);
  assert.equal(json.code, 0, json.stderr);
  const objects = (JSON.parse(json.stdout) as { objects: ObjectMeta[] }).objects;
  assert.deepEqual(
    objects.map((o) => o.key),
    ['cli/a', 'cli/b/c', 'other/x'],
    'without the store token the namespace sec is left out',
  );
  const withToken = await runCli(['objects', 'ls', 'sec/', '--json', '--store-token', 'sesame-0123456789', ...d.clientArgs]);
  assert.deepEqual(
    (JSON.parse(withToken.stdout) as { objects: ObjectMeta[] }).objects.map((o) => o.key),
    ['sec/s'],
  );
  const fromEnv = await runCli(['objects', 'ls', 'sec/', '--json', ...d.clientArgs], { TENSORCAST_STORE_TOKEN: 'sesame-0123456789' });
  assert.equal((JSON.parse(fromEnv.stdout) as { objects: ObjectMeta[] }).objects.length, 1);

  const rm = await runCli(['objects', 'rm', 'cli/a', 'cli/missing', ...d.clientArgs]);
  assert.equal(rm.code, 2, 'a missing key: exit 2');
  assert.match(rm.stdout, /^deleted cli\/a$/m);
  assert.match(rm.stderr, /TC_ERR_NOT_FOUND: cli\/missing/);
  const forced = await runCli(['objects', 'rm', '--force', 'cli/missing', 'cli/b/c', ...d.clientArgs]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /not found cli\/missing \(ignored\)/);
  const invalid = await runCli(['objects', 'rm', 'nokey', ...d.clientArgs]);
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /TC_ERR_INVALID_ARGUMENT/);
  const denied = await runCli(['objects', 'rm', 'sec/s', 'other/x', '--store-token', 'wrong-token', ...d.clientArgs]);
  assert.equal(denied.code, 1, 'a key refused for its token: exit 1');
  assert.match(denied.stderr, /TC_ERR_AUTH: sec\/s/);
  assert.match(denied.stdout, /^deleted other\/x$/m);
  const empty = await runCli(['objects', 'ls', 'cli/', ...d.clientArgs]);
  assert.match(empty.stdout, /^0 objects, 0 B \(0 bytes\)$/m);
});
