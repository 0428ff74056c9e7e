// The SDK and the CLI over TLS with client certificates (mTLS) against a `handshake serve` process: a client
// with a certificate signed by the listener's client CA publishes and reads; one without a certificate, or
// with one of another CA, is refused during the TLS handshake (TC_ERR_UNAVAILABLE, never retried into success).

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTensorcastError } from '../../src/core/errors.js';
import { handshakes } from '../../src/handshake/client/index.js';
import { startHandshakeListener } from '../harness/handshake-listener.js';
import { runCli } from '../helpers/cli.js';
import { rankMeta } from '../helpers/handshake.js';
import { makeTestCerts } from '../helpers/tls-certs.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'tls-client-token';

test('SDK and CLI over mTLS: a good client certificate works; none, or one of another CA, is refused', async (t) => {
  const certs = makeTestCerts(t);
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, TOKEN);
  const listener = await startHandshakeListener(t, {
    args: [
      '--token-file',
      tokenFile,
      '--tls-cert',
      certs.server.certFile,
      '--tls-key',
      certs.server.keyFile,
      '--tls-client-ca',
      certs.caFile,
    ],
  });
  assert.match(listener.url, /^https:\/\//);
  const good = handshakes({ url: listener.url, token: TOKEN, tls: { ca: certs.ca, cert: certs.client.cert, key: certs.client.key } });
  t.after(() => good.close());
  const meta = rankMeta('tls-engine', 0, 0);
  await good.publish(meta);
  assert.deepEqual(await good.get('tls-engine', { tpRank: 0, dpRank: 0 }), meta);

  for (const [label, tls] of [
    ['no client certificate', { ca: certs.ca }],
    ['a certificate of another CA', { ca: certs.ca, cert: certs.strangerClient.cert, key: certs.strangerClient.key }],
  ] as const) {
    const hs = handshakes({ url: listener.url, token: TOKEN, tls, failurePolicy: 'fail' });
    t.after(() => hs.close());
    const error = await hs.get('tls-engine', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e);
    assert.ok(isTensorcastError(error, 'TC_ERR_UNAVAILABLE'), `${label}: ${String(error)}`);
  }

  const tlsFlags = ['--url', listener.url, '--token-file', tokenFile, '--tls-ca', certs.caFile];
  const ok = await runCli([
    'handshake',
    'get',
    'tls-engine',
    '--tp-rank',
    '0',
    '--dp-rank',
    '0',
    '--json',
    ...tlsFlags,
    '--tls-cert',
    certs.client.certFile,
    '--tls-key',
    certs.client.keyFile,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { engine_id: string }).engine_id, 'tls-engine');
  const refused = await runCli(['handshake', 'ls', ...tlsFlags]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error TC_ERR_UNAVAILABLE:/);
  const half = await runCli(['handshake', 'ls', ...tlsFlags, '--tls-cert', certs.client.certFile]);
  assert.equal(half.code, 2);
  assert.match(half.stderr, /^error TC_ERR_INVALID_ARGUMENT: --tls-cert and --tls-key go together/);
});
