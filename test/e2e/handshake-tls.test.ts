// The handshake listener over TLS: HTTPS with the server's certificate, and with --tls-client-ca a client
// must present a certificate signed by that CA (mTLS); one without a certificate or with one of another CA is
// refused during the TLS handshake, before any route (health included).

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { codeOf, publishRequest, rawRequest, sampleRank, startHandshakeListener } from '../harness/handshake-listener.js';
import { makeTestCerts } from '../helpers/tls-certs.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'tls-test-token-0123456789abcdef';

test('HTTPS: the listener serves with its certificate, and the token still applies', async (t) => {
  const certs = makeTestCerts(t);
  const tokenFile = join(tempDir(t), 'token');
  writeFileSync(tokenFile, TOKEN);
  const hs = await startHandshakeListener(t, {
    args: ['--token-file', tokenFile, '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile],
  });
  assert.match(hs.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/health', { ca: certs.ca })).status, 200);
  assert.equal(codeOf(await rawRequest(hs.url, 'GET', '/v1/engines', { ca: certs.ca })), 'TC_ERR_AUTH');
  const pub = publishRequest(sampleRank());
  assert.equal(
    (await rawRequest(hs.url, 'PUT', pub.path, { ca: certs.ca, token: TOKEN, body: pub.body, headers: pub.headers })).status,
    200,
  );
  assert.deepEqual((await rawRequest(hs.url, 'GET', pub.path, { ca: certs.ca, token: TOKEN })).body, pub.body);
  // A client that does not trust the server's CA refuses it.
  await assert.rejects(rawRequest(hs.url, 'GET', '/v1/health'), /self[- ]signed|unable to verify|certificate/i);
});

test('mTLS: only clients with a certificate signed by the configured CA get through', async (t) => {
  const certs = makeTestCerts(t);
  const hs = await startHandshakeListener(t, {
    args: ['--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--tls-client-ca', certs.caFile],
  });
  const good = { ca: certs.ca, cert: certs.client.cert, key: certs.client.key };
  // No client certificate, or one of another CA: the TLS handshake fails (no HTTP answer at all).
  await assert.rejects(rawRequest(hs.url, 'GET', '/v1/health', { ca: certs.ca }), isTlsRefusal);
  await assert.rejects(
    rawRequest(hs.url, 'GET', '/v1/health', { ca: certs.ca, cert: certs.strangerClient.cert, key: certs.strangerClient.key }),
    isTlsRefusal,
  );
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/health', good)).status, 200);
  const pub = publishRequest(sampleRank());
  assert.equal((await rawRequest(hs.url, 'PUT', pub.path, { ...good, body: pub.body, headers: pub.headers })).status, 200);
  const got = await rawRequest(hs.url, 'GET', pub.path, good);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, pub.body);
  // Refused clients did not disturb it.
  await assert.rejects(rawRequest(hs.url, 'GET', pub.path, { ca: certs.ca }), isTlsRefusal);
  assert.equal((await rawRequest(hs.url, 'GET', '/v1/health', good)).status, 200);
  assert.equal(await hs.stop(), 0);
});

test('TLS flags: a key without a certificate, or a client CA without both, is refused at start', async (t) => {
  const certs = makeTestCerts(t);
  const { runCli } = await import('../helpers/cli.js');
  for (const args of [
    ['--tls-key', certs.server.keyFile],
    ['--tls-client-ca', certs.caFile],
    ['--tls-cert', certs.server.certFile, '--tls-key', certs.client.keyFile],
  ]) {
    const r = await runCli(['handshake', 'serve', '--listen', '127.0.0.1:0', ...args]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, /TC_ERR_CONFIG/, `${args.join(' ')}: ${r.stderr}`);
  }
});

function isTlsRefusal(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException & { message: string };
  // Depending on timing, the client sees the server's alert, or the connection reset right after it.
  return /ECONNRESET|EPIPE|certificate|alert|socket hang up|handshake/i.test(`${e.code ?? ''} ${e.message}`);
}
