// `tensorcast serve --handshake-listen`: the daemon runs a handshake listener on its own port, beside (never
// on) the control API, with the daemon's token unless --handshake-token-file names another; /v1/info and the
// ready line report its URL.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemon } from '../harness/daemon.js';
import { postgresCatalogUrl, redisCatalogUrl } from '../harness/services.js';
import { codeOf, publishRequest, rawRequest, sampleRank } from '../harness/handshake-listener.js';
import { controlRequest } from '../helpers/control-http.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('serve --handshake-listen answers handshake routes on that port and not on the control port', async (t) => {
  const d = await startDaemon(t, { extraArgs: ['--handshake-listen', '127.0.0.1:0', '--handshake-ttl', '30'] });
  const info = await controlRequest(d, 'GET', '/v1/info');
  const url = (info.json as { handshakeUrl: string | null }).handshakeUrl;
  assert.ok(url !== null && /^http:\/\/127\.0\.0\.1:\d+$/.test(url), String(url));
  assert.notEqual(new URL(url).port, new URL(d.controlUrl).port);
  assert.notEqual(new URL(url).port, d.dataAddress.split(':').pop());

  // The handshake port: the daemon's token, every route but health.
  assert.deepEqual((await rawRequest(url, 'GET', '/v1/health')).json, { ok: true, store: 'memory' });
  const pub = publishRequest(sampleRank());
  assert.equal((await rawRequest(url, 'PUT', pub.path, { body: pub.body, headers: pub.headers })).status, 401);
  const put = await rawRequest(url, 'PUT', pub.path, { token: d.token, body: pub.body, headers: pub.headers });
  assert.equal(put.status, 200, put.body.toString());
  // The TTL flag reached the listener: expiry about 30 s ahead, not the 60 s default.
  const ahead = (put.json as { expiresAtMs: number }).expiresAtMs - Date.now();
  assert.ok(ahead > 0 && ahead <= 30_000, String(ahead));
  const got = await rawRequest(url, 'GET', pub.path, { token: d.token });
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, pub.body);

  // The control port knows none of it, and the handshake port serves no control route.
  for (const [method, path] of [
    ['GET', pub.path],
    ['PUT', pub.path],
    ['GET', '/v1/engines'],
    ['GET', '/v1/health'],
  ] as const) {
    const a = await controlRequest(d, method, path, method === 'PUT' ? {} : undefined);
    assert.equal(a.status, 404, `control ${method} ${path}`);
  }
  for (const path of ['/healthz', '/v1/info', '/v1/artifacts']) {
    const a = await rawRequest(url, 'GET', path, { token: d.token });
    assert.equal(a.status, 404, `handshake GET ${path}`);
    assert.equal(codeOf(a), 'TC_ERR_NOT_FOUND');
  }
  assert.equal(await d.stop('SIGTERM'), 0);
  // Closed with the daemon.
  await assert.rejects(rawRequest(url, 'GET', '/v1/health'), /ECONNREFUSED/);
});

test('serve --handshake-token-file: the handshake listener takes that token, the control API keeps its own', async (t) => {
  const file = join(tempDir(t), 'handshake-token');
  writeFileSync(file, 'handshake-only-token-0123456789\n');
  const d = await startDaemon(t, { extraArgs: ['--handshake-listen', '127.0.0.1:0', '--handshake-token-file', file] });
  const url = ((await controlRequest(d, 'GET', '/v1/info')).json as { handshakeUrl: string }).handshakeUrl;
  assert.equal((await rawRequest(url, 'GET', '/v1/engines', { token: d.token })).status, 401);
  assert.equal((await rawRequest(url, 'GET', '/v1/engines', { token: 'handshake-only-token-0123456789' })).status, 200);
  assert.equal(
    (await controlRequest({ controlUrl: d.controlUrl, token: 'handshake-only-token-0123456789' }, 'GET', '/v1/info')).status,
    401,
  );
});

test('serve: a daemon without --handshake-listen runs no handshake listener; bad handshake settings stop the start', async (t) => {
  const d = await startDaemon(t);
  assert.equal(((await controlRequest(d, 'GET', '/v1/info')).json as { handshakeUrl: unknown }).handshakeUrl, null);
  const dataDir = tempDir(t);
  for (const args of [
    ['--handshake-listen', 'nohost'],
    ['--handshake-ttl', 'soon'],
    ['--handshake-tls-key', '/nonexistent.key'],
    ['--handshake-listen', '0.0.0.0:0'],
  ]) {
    const r = await runCli(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--data-listen', '127.0.0.1:0', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /TC_ERR_CONFIG/);
  }
});

for (const [kind, catalogUrl] of [
  ['redis', redisCatalogUrl],
  ['postgres', postgresCatalogUrl],
] as const) {
  test(`serve --handshake-listen with a ${kind} catalog: two daemons' listeners serve one cluster's metadata`, async (t) => {
    const url = await catalogUrl(t);
    if (url === undefined) return;
    const tokenFile = join(tempDir(t), 'token');
    writeFileSync(tokenFile, 'cluster-token-0123456789abcdef\n');
    const args = ['--catalog', url, '--token-file', tokenFile, '--handshake-listen', '127.0.0.1:0'];
    const [a, b] = await Promise.all([startDaemon(t, { extraArgs: args }), startDaemon(t, { extraArgs: args })]);
    const urlOf = async (d: typeof a): Promise<string> =>
      ((await controlRequest(d, 'GET', '/v1/info')).json as { handshakeUrl: string }).handshakeUrl;
    const [ha, hb] = [await urlOf(a), await urlOf(b)];
    assert.deepEqual((await rawRequest(ha, 'GET', '/v1/health')).json, { ok: true, store: kind });
    const pub = publishRequest(sampleRank({ engineId: `engine-${kind}` }));
    assert.equal((await rawRequest(ha, 'PUT', pub.path, { token: a.token, body: pub.body, headers: pub.headers })).status, 200);
    const got = await rawRequest(hb, 'GET', pub.path, { token: b.token });
    assert.equal(got.status, 200, got.body.toString());
    assert.deepEqual(got.body, pub.body);
    // A daemon that stops takes its listener down; what it published stays with the catalog.
    assert.equal(await a.stop('SIGTERM'), 0);
    assert.deepEqual((await rawRequest(hb, 'GET', pub.path, { token: b.token })).body, pub.body);
  });
}
