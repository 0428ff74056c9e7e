// `tensorcast handshake serve` as a user runs it: auth on every route but health, coded answers to bad input
// (oversized, malformed, incompatible, unknown, expired, mismatched), and the service still healthy after.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { decodeRankMetadata } from '../../src/handshake/rank-metadata.js';
import { codeOf, publishRequest, rawRequest, sampleRank, startHandshakeListener } from '../harness/handshake-listener.js';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'handshake-test-token-0123456789';

function tokenFile(t: Parameters<typeof tempDir>[0]): string {
  const file = join(tempDir(t), 'token');
  writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
  return file;
}

test('every route but health needs the bearer token', async (t) => {
  const hs = await startHandshakeListener(t, { args: ['--token-file', tokenFile(t)] });
  const pub = publishRequest(sampleRank());
  const routes: [string, string, unknown, Record<string, string>][] = [
    ['GET', '/v1/engines', undefined, {}],
    ['GET', '/v1/engines/prefill-0', undefined, {}],
    ['GET', pub.path, undefined, {}],
    ['PUT', pub.path, pub.body, pub.headers],
    ['POST', '/v1/engines/prefill-0/renew', { incarnation: 'inc-1' }, {}],
    ['DELETE', '/v1/engines/prefill-0', undefined, {}],
    ['GET', '/v1/no-such-route', undefined, {}],
    ['POST', '/v1/health', undefined, {}],
  ];
  for (const [method, path, body, headers] of routes) {
    for (const token of [undefined, 'wrong-token-0123456789', `${TOKEN}x`, '']) {
      const a = await rawRequest(hs.url, method, path, { body, headers, ...(token === undefined ? {} : { token }) });
      assert.equal(a.status, 401, `${method} ${path} with token ${String(token)}`);
      assert.equal(codeOf(a), 'TC_ERR_AUTH');
      assert.equal(a.headers['www-authenticate'], 'Bearer');
    }
  }
  // A token in another scheme is no token.
  const basic = await rawRequest(hs.url, 'GET', '/v1/engines', { headers: { authorization: `Basic ${TOKEN}` } });
  assert.equal(basic.status, 401);
  const health = await rawRequest(hs.url, 'GET', '/v1/health');
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { ok: true, store: 'memory' });
  // With the token: an unknown route is 404, the known ones answer.
  const unknown = await rawRequest(hs.url, 'GET', '/v1/no-such-route', { token: TOKEN });
  assert.equal(unknown.status, 404);
  assert.equal(codeOf(unknown), 'TC_ERR_NOT_FOUND');
  const put = await rawRequest(hs.url, 'PUT', pub.path, { token: TOKEN, body: pub.body, headers: pub.headers });
  assert.equal(put.status, 200, put.body.toString());
  const list = await rawRequest(hs.url, 'GET', '/v1/engines', { token: TOKEN });
  assert.equal(list.status, 200);
  assert.deepEqual(
    (list.json as { engines: { engineId: string }[] }).engines.map((e) => e.engineId),
    ['prefill-0'],
  );
  assert.equal(await hs.stop('SIGTERM'), 0);
});

test('bad input gets coded answers and the listener keeps serving', async (t) => {
  const hs = await startHandshakeListener(t, {
    args: ['--token-file', tokenFile(t), '--max-payload', '64KiB', '--max-engine-bytes', '1MiB'],
  });
  const req = (method: string, path: string, o: Parameters<typeof rawRequest>[3] = {}) =>
    rawRequest(hs.url, method, path, { token: TOKEN, ...o });
  const good = sampleRank();
  const pub = publishRequest(good);

  // Unknown engine and rank.
  const none = await req('GET', pub.path);
  assert.equal(none.status, 404);
  assert.equal(codeOf(none), 'TC_ERR_NOT_FOUND');
  assert.equal((await req('GET', '/v1/engines/prefill-0')).status, 404);

  // A good publish and read: the bytes come back as sent, with the headers.
  const put = await req('PUT', pub.path, { body: pub.body, headers: pub.headers });
  assert.equal(put.status, 200, put.body.toString());
  assert.equal((put.json as { incarnation: string }).incarnation, 'inc-1');
  const got = await req('GET', pub.path);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, pub.body);
  assert.equal(got.headers['content-type'], 'application/msgpack');
  assert.equal(got.headers['x-tensorcast-compat-hash'], 'hash-a');
  assert.equal(got.headers['x-tensorcast-incarnation'], 'inc-1');
  assert.ok(Number(got.headers['x-tensorcast-expires-at']) > Date.now());
  const decoded = decodeRankMetadata(got.body);
  assert.deepEqual({ ...decoded, agentMetadata: [...decoded.agentMetadata] }, { ...good, agentMetadata: [...good.agentMetadata] });
  assert.equal((await req('GET', publishRequest(sampleRank({ tpRank: 1 })).path)).status, 404);

  // Oversized: by content-length (refused before it is read) and chunked (cut at the cap).
  const big = Buffer.alloc(1 << 20, 7);
  const tooBig = await req('PUT', pub.path, { body: big, headers: pub.headers });
  assert.equal(tooBig.status, 413);
  assert.equal(codeOf(tooBig), 'TC_ERR_TOO_LARGE');
  const chunked = await req('PUT', pub.path, { body: big, headers: { ...pub.headers, 'transfer-encoding': 'chunked' } });
  assert.equal(chunked.status, 413);
  assert.equal(codeOf(chunked), 'TC_ERR_TOO_LARGE');

  // Malformed msgpack, and a valid msgpack value that is not a payload.
  for (const body of [
    Buffer.from([0xc1]),
    Buffer.from([0x92, 0x01]),
    Buffer.from([0x01]),
    Buffer.alloc(0),
    Buffer.concat([pub.body, Buffer.from([0])]),
  ]) {
    const a = await req('PUT', pub.path, { body, headers: pub.headers });
    assert.equal(a.status, 400, body.toString('hex'));
    assert.equal(codeOf(a), 'TC_ERR_MALFORMED');
  }

  // Another content type: refused, never read as text or JSON.
  for (const type of ['text/plain', 'application/json', 'image/png']) {
    const a = await req('PUT', pub.path, { body: pub.body, headers: { ...pub.headers, 'content-type': type } });
    assert.equal(a.status, 400, type);
    assert.equal(codeOf(a), 'TC_ERR_MALFORMED', type);
  }
  const json = await req('PUT', pub.path, {
    body: Buffer.from('{"v":1}'),
    headers: { ...pub.headers, 'content-type': 'application/json' },
  });
  assert.equal(codeOf(json), 'TC_ERR_MALFORMED');
  assert.match((json.json as { error: { message: string } }).error.message, /application\/msgpack/);

  // Another hash for the live incarnation: 409 from the headers; the undecodable body is never parsed.
  const wrongHash = await req('PUT', pub.path, {
    body: Buffer.from([0xc1, 0xc1]),
    headers: { ...pub.headers, 'x-tensorcast-compat-hash': 'hash-b' },
  });
  assert.equal(wrongHash.status, 409);
  assert.equal(codeOf(wrongHash), 'TC_ERR_INCOMPATIBLE');
  assert.deepEqual(pick((wrongHash.json as { error: { details: object } }).error.details), { expected: 'hash-a', actual: 'hash-b' });

  // A reader that expects another hash: 409 naming both, no payload.
  const wrongExpect = await req('GET', pub.path, { headers: { 'x-tensorcast-compat-hash': 'hash-z' } });
  assert.equal(wrongExpect.status, 409);
  assert.equal(codeOf(wrongExpect), 'TC_ERR_INCOMPATIBLE');
  assert.deepEqual(pick((wrongExpect.json as { error: { details: object } }).error.details), { expected: 'hash-z', actual: 'hash-a' });
  assert.match((wrongExpect.json as { error: { message: string } }).error.message, /hash-z.*hash-a/);
  const rightExpect = await req('GET', pub.path, { headers: { 'x-tensorcast-compat-hash': 'hash-a' } });
  assert.equal(rightExpect.status, 200);

  // Path, headers and payload must agree.
  const other = publishRequest(sampleRank({ tpRank: 2 }));
  const mismatches: [string, Record<string, string>, Buffer][] = [
    [other.path.replace('/ranks/2/', '/ranks/3/'), other.headers, other.body],
    [other.path.replace('prefill-0', 'prefill-1'), other.headers, other.body],
    [other.path, { ...other.headers, 'x-tensorcast-incarnation': 'inc-2' }, other.body],
    [other.path, other.headers, publishRequest(sampleRank({ tpRank: 2, dpRank: 1 })).body],
  ];
  for (const [path, headers, body] of mismatches) {
    const a = await req('PUT', path, { body, headers });
    assert.equal(a.status, 400, `${path} ${JSON.stringify(headers)}`);
    assert.equal(codeOf(a), 'TC_ERR_MALFORMED');
  }
  // Missing or invalid headers, invalid path parameters.
  assert.equal(
    codeOf(await req('PUT', other.path, { body: other.body, headers: { 'x-tensorcast-compat-hash': 'hash-a' } })),
    'TC_ERR_MALFORMED',
  );
  assert.equal(
    codeOf(await req('PUT', other.path, { body: other.body, headers: { ...other.headers, 'x-tensorcast-compat-hash': 'bad hash!' } })),
    'TC_ERR_MALFORMED',
  );
  for (const path of [
    '/v1/engines/prefill-0/ranks/4096/0',
    '/v1/engines/prefill-0/ranks/-1/0',
    '/v1/engines/prefill-0/ranks/1.5/0',
    `/v1/engines/${'e'.repeat(129)}/ranks/0/0`,
    '/v1/engines/bad%20id/ranks/0/0',
  ]) {
    const a = await req('GET', path);
    assert.equal(a.status, 400, path);
    assert.equal(codeOf(a), 'TC_ERR_INVALID_ARGUMENT', path);
  }
  // Renew: a bad body, an unknown incarnation, the live one.
  assert.equal(codeOf(await req('POST', '/v1/engines/prefill-0/renew', { body: { incarnation: 7 } })), 'TC_ERR_MALFORMED');
  assert.equal(
    codeOf(await req('POST', '/v1/engines/prefill-0/renew', { body: Buffer.from('{'), headers: { 'content-type': 'application/json' } })),
    'TC_ERR_MALFORMED',
  );
  assert.equal((await req('POST', '/v1/engines/prefill-0/renew', { body: { incarnation: 'inc-0' } })).status, 404);
  const renewed = await req('POST', '/v1/engines/prefill-0/renew', { body: { incarnation: 'inc-1' } });
  assert.equal(renewed.status, 200);
  assert.equal((renewed.json as { renewed: number }).renewed, 1);

  // The engine byte cap: 1 MiB over 64 KiB payloads, distinct ranks of one incarnation.
  let refused: unknown;
  for (let r = 1; r < 40 && refused === undefined; r++) {
    const p = publishRequest(sampleRank({ tpRank: r, tpSize: 64, agentMetadata: new Uint8Array(60_000).fill(r) }));
    const a = await req('PUT', p.path, { body: p.body, headers: p.headers });
    if (a.status !== 200) refused = codeOf(a);
  }
  assert.equal(refused, 'TC_ERR_TOO_LARGE');

  // A new incarnation replaces the old one's ranks.
  const next = publishRequest(sampleRank({ incarnation: 'inc-2', compatibilityHash: 'hash-b' }));
  const replaced = await req('PUT', next.path, { body: next.body, headers: next.headers });
  assert.equal(replaced.status, 200, replaced.body.toString());
  assert.equal((replaced.json as { replacedIncarnation: string }).replacedIncarnation, 'inc-1');
  const summary = await req('GET', '/v1/engines/prefill-0');
  assert.equal(summary.status, 200);
  assert.equal((summary.json as { incarnation: string }).incarnation, 'inc-2');
  assert.equal((summary.json as { ranks: unknown[] }).ranks.length, 1);

  // Still healthy, and a good publish/get works; delete removes.
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/health')).status, 200);
  const last = publishRequest(sampleRank({ engineId: 'prefill-9', incarnation: 'x' }));
  assert.equal((await req('PUT', last.path, { body: last.body, headers: last.headers })).status, 200);
  assert.deepEqual((await req('GET', last.path)).body, last.body);
  assert.deepEqual((await req('DELETE', '/v1/engines/prefill-9')).json, { removed: 1 });
  assert.equal((await req('GET', last.path)).status, 404);
  assert.equal(await hs.stop('SIGINT'), 0);
});

/** Writes `data` on a fresh connection; resolves with everything read until the server closes it. */
function rawExchange(url: string, data: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
    socket.on('close', () => resolve(out));
    socket.end(data);
  });
}

/** The status and error code of a raw HTTP answer. */
function rawStatusAndCode(answer: string): [number, unknown] {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
  let code: unknown;
  try {
    code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
  } catch {
    code = `not JSON: ${body.slice(0, 120)}`;
  }
  return [status, code];
}

test('URLs the router refuses and requests the HTTP parser refuses still get coded error bodies', async (t) => {
  const hs = await startHandshakeListener(t, { args: ['--token-file', tokenFile(t)] });
  // An engine id far above 128 characters (past the router's parameter limit) and a broken percent-escape.
  const long = await rawRequest(hs.url, 'GET', `/v1/engines/${'a'.repeat(2000)}/ranks/0/0`, { token: TOKEN });
  assert.equal(long.status, 400, long.body.toString());
  assert.equal(codeOf(long), 'TC_ERR_INVALID_ARGUMENT');
  const badEscape = await rawRequest(hs.url, 'GET', '/v1/engines/%ZZ', { token: TOKEN });
  assert.equal(badEscape.status, 400, badEscape.body.toString());
  assert.equal(codeOf(badEscape), 'TC_ERR_INVALID_ARGUMENT');
  // Without the token they are 401, like any other route.
  const anonymous = await rawRequest(hs.url, 'GET', '/v1/engines/%ZZ');
  assert.equal(anonymous.status, 401);
  assert.equal(codeOf(anonymous), 'TC_ERR_AUTH');
  // Headers above Node's limit, and a request the parser cannot read.
  assert.deepEqual(
    rawStatusAndCode(await rawExchange(hs.url, `GET /v1/engines HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(100_000)}\r\n\r\n`)),
    [431, 'TC_ERR_TOO_LARGE'],
  );
  assert.deepEqual(rawStatusAndCode(await rawExchange(hs.url, 'PUT /v1/engines HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n')), [
    400,
    'TC_ERR_MALFORMED',
  ]);
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/health')).status, 200);
  assert.equal(await hs.stop('SIGTERM'), 0);
});

test('a rank that is not renewed expires: 410 with when and which incarnation', async (t) => {
  const hs = await startHandshakeListener(t, { args: ['--handshake-ttl', '1'] });
  const pub = publishRequest(sampleRank());
  const put = await rawRequest(hs.url, 'PUT', pub.path, { body: pub.body, headers: pub.headers });
  assert.equal(put.status, 200);
  const expiresAtMs = (put.json as { expiresAtMs: number }).expiresAtMs;
  let a = await rawRequest(hs.url, 'GET', pub.path);
  for (let i = 0; i < 600 && a.status === 200; i++) {
    await sleep(100);
    a = await rawRequest(hs.url, 'GET', pub.path);
  }
  assert.equal(a.status, 410, a.body.toString());
  assert.equal(codeOf(a), 'TC_ERR_EXPIRED');
  const details = (a.json as { error: { details: { expiredAtMs: number; incarnation: string } } }).error.details;
  assert.equal(details.incarnation, 'inc-1');
  assert.equal(details.expiredAtMs, expiresAtMs);
  // An expired engine has no live rank: no summary, not listed, renew finds nothing.
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/engines/prefill-0')).status, 404);
  assert.deepEqual((await rawRequest(hs.url, 'GET', '/v1/engines')).json, { engines: [] });
  // Re-publishing brings it back.
  assert.equal((await rawRequest(hs.url, 'PUT', pub.path, { body: pub.body, headers: pub.headers })).status, 200);
  assert.equal((await rawRequest(hs.url, 'GET', pub.path)).status, 200);
});

test('a non-loopback listener without a token is refused at start', async () => {
  const r = await runCli(['handshake', 'serve', '--listen', '0.0.0.0:0'], {
    TENSORCAST_HANDSHAKE_TOKEN: '',
    TENSORCAST_HANDSHAKE_TOKEN_FILE: '',
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /TC_ERR_CONFIG/);
  assert.match(r.stderr, /refusing to listen for handshakes on 0\.0\.0\.0:0 without a token/);
  assert.equal(r.stdout, '');
});

test('settings come from the environment; bad flags are TC_ERR_CONFIG', async (t) => {
  const hs = await startHandshakeListener(t, {
    args: [],
    env: { TENSORCAST_HANDSHAKE_TOKEN: TOKEN, TENSORCAST_HANDSHAKE_LISTEN: '127.0.0.1:0' },
  });
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/engines')).status, 401);
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/engines', { token: TOKEN })).status, 200);
  for (const args of [
    ['--listen', 'nohost'],
    ['--handshake-ttl', 'soon'],
    ['--max-payload', '0'],
    ['--tls-cert', '/nonexistent'],
    ['--token-file', '/nonexistent/token'],
  ]) {
    const r = await runCli(['handshake', 'serve', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /TC_ERR_CONFIG/);
  }
});

function pick(details: object): { expected: unknown; actual: unknown } {
  const d = details as { expected: unknown; actual: unknown };
  return { expected: d.expected, actual: d.actual };
}
