// `tensorcast handshake serve --catalog redis://|postgres://` as processes: published metadata survives a
// kill -9 of the listener, two listeners on one catalog serve the same engines, and an engine that
// republishes with a new incarnation through one listener is seen by a reader through the other.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { decodeRankMetadata } from '../../src/handshake/rank-metadata.js';
import {
  codeOf,
  publishRequest,
  rawRequest,
  sampleRank,
  startHandshakeListener,
  type HandshakeListener,
} from '../harness/handshake-listener.js';
import { postgresCatalogUrl, redisCatalogUrl } from '../harness/services.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'handshake-restart-token-0123456789';

const BACKENDS: readonly [string, (t: TestContext) => Promise<string | undefined>][] = [
  ['redis', redisCatalogUrl],
  ['postgres', postgresCatalogUrl],
];

/** Starts a listener on `catalog` with the test token; checks it names its store. */
async function listener(t: TestContext, catalog: string, kind: string): Promise<HandshakeListener> {
  const file = join(tempDir(t), 'token');
  writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
  const hs = await startHandshakeListener(t, { args: ['--token-file', file, '--catalog', catalog] });
  assert.match(hs.output(), new RegExp(`\\(store ${kind}\\)`));
  return hs;
}

const req = (hs: HandshakeListener, method: string, path: string, o: Parameters<typeof rawRequest>[3] = {}) =>
  rawRequest(hs.url, method, path, { token: TOKEN, ...o });

async function publish(hs: HandshakeListener, meta: ReturnType<typeof sampleRank>): Promise<Buffer> {
  const pub = publishRequest(meta);
  const a = await req(hs, 'PUT', pub.path, { body: pub.body, headers: pub.headers });
  assert.equal(a.status, 200, a.body.toString());
  return pub.body;
}

const blob = (seed: number): Uint8Array => Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 31 + seed * 17 + (i >> 8)) & 0xff);

for (const [kind, catalogUrl] of BACKENDS) {
  test(`handshake serve --catalog ${kind}: a listener killed with SIGKILL loses nothing; a new one serves the same bytes`, async (t) => {
    const catalog = await catalogUrl(t);
    if (catalog === undefined) return;
    const first = await listener(t, catalog, kind);
    const ranks = [0, 1, 2, 3].map((tp) => sampleRank({ tpRank: tp, dpRank: 1, agentMetadata: blob(tp) }));
    const sent = [];
    for (const meta of ranks) sent.push(await publish(first, meta));
    const summaryBefore = (await req(first, 'GET', '/v1/engines/prefill-0')).json;
    assert.equal(await first.stop('SIGKILL'), 'SIGKILL');

    const second = await listener(t, catalog, kind);
    assert.notEqual(second.url, first.url);
    for (const [i, meta] of ranks.entries()) {
      const a = await req(second, 'GET', publishRequest(meta).path);
      assert.equal(a.status, 200, a.body.toString());
      assert.deepEqual(a.body, sent[i], `rank ${meta.tpRank}: the exact published bytes`);
      assert.equal(a.headers['x-tensorcast-incarnation'], 'inc-1');
      assert.equal(a.headers['x-tensorcast-compat-hash'], 'hash-a');
      assert.deepEqual(Buffer.from(decodeRankMetadata(a.body).agentMetadata), Buffer.from(meta.agentMetadata));
    }
    assert.deepEqual((await req(second, 'GET', '/v1/engines/prefill-0')).json, summaryBefore);
    // The survivor also renews and removes what the dead one published.
    const renew = await req(second, 'POST', '/v1/engines/prefill-0/renew', { body: { incarnation: 'inc-1' } });
    assert.equal(renew.status, 200, renew.body.toString());
    assert.equal((renew.json as { renewed: number }).renewed, 4);
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  test(`handshake serve --catalog ${kind}: two listeners on one catalog serve the same engines`, async (t) => {
    const catalog = await catalogUrl(t);
    if (catalog === undefined) return;
    const [a, b] = await Promise.all([listener(t, catalog, kind), listener(t, catalog, kind)]);
    const metas = [];
    for (const engineId of ['prefill-a', 'prefill-b']) {
      for (const tp of [0, 1]) metas.push(sampleRank({ engineId, tpRank: tp, tpSize: 2, agentMetadata: blob(tp + engineId.length) }));
    }
    // Publishes go through both listeners at once, alternating.
    const sent = await Promise.all(metas.map((meta, i) => publish(i % 2 === 0 ? a : b, meta)));
    for (const hs of [a, b]) {
      for (const [i, meta] of metas.entries()) {
        const got = await req(hs, 'GET', publishRequest(meta).path);
        assert.equal(got.status, 200, got.body.toString());
        assert.deepEqual(got.body, sent[i]);
      }
    }
    const [listA, listB] = await Promise.all([req(a, 'GET', '/v1/engines'), req(b, 'GET', '/v1/engines')]);
    assert.deepEqual(listA.json, listB.json);
    assert.deepEqual(
      (listA.json as { engines: { engineId: string; ranks: unknown[] }[] }).engines.map((e) => [e.engineId, e.ranks.length]),
      [
        ['prefill-a', 2],
        ['prefill-b', 2],
      ],
    );
    // A delete through one is seen through the other.
    assert.equal((await req(b, 'DELETE', '/v1/engines/prefill-b')).status, 200);
    assert.equal((await req(a, 'GET', publishRequest(metas[2]!).path)).status, 404);
  });

  test(`handshake serve --catalog ${kind}: a republish with a new incarnation through one listener is seen through the other`, async (t) => {
    const catalog = await catalogUrl(t);
    if (catalog === undefined) return;
    const [publisher, reader] = await Promise.all([listener(t, catalog, kind), listener(t, catalog, kind)]);
    const old = [0, 1].map((tp) => sampleRank({ tpRank: tp, tpSize: 2, agentMetadata: blob(tp) }));
    for (const meta of old) await publish(publisher, meta);
    const before = await req(reader, 'GET', publishRequest(old[0]!).path, { headers: { 'x-tensorcast-compat-hash': 'hash-a' } });
    assert.equal(before.status, 200);
    assert.equal(before.headers['x-tensorcast-incarnation'], 'inc-1');

    // The engine restarts: new incarnation, new hash, one rank so far (tp size 1 now).
    const restarted = sampleRank({ tpRank: 0, tpSize: 1, incarnation: 'inc-2', compatibilityHash: 'hash-b', agentMetadata: blob(99) });
    const sent = await publish(publisher, restarted);
    const after = await req(reader, 'GET', publishRequest(restarted).path);
    assert.equal(after.status, 200);
    assert.equal(after.headers['x-tensorcast-incarnation'], 'inc-2');
    assert.equal(after.headers['x-tensorcast-compat-hash'], 'hash-b');
    assert.deepEqual(after.body, sent);
    // The old incarnation's other rank is gone, and a reader still expecting the old hash is told both.
    const gone = await req(reader, 'GET', publishRequest(old[1]!).path);
    assert.equal(gone.status, 404);
    assert.equal(codeOf(gone), 'TC_ERR_NOT_FOUND');
    const stale = await req(reader, 'GET', publishRequest(restarted).path, { headers: { 'x-tensorcast-compat-hash': 'hash-a' } });
    assert.equal(stale.status, 409);
    assert.equal(codeOf(stale), 'TC_ERR_INCOMPATIBLE');
    const details = (stale.json as { error: { details: Record<string, unknown> } }).error.details;
    assert.equal(details.expected, 'hash-a');
    assert.equal(details.actual, 'hash-b');
    const summary = (await req(reader, 'GET', '/v1/engines/prefill-0')).json as { incarnation: string; tpSize: number; ranks: unknown[] };
    assert.equal(summary.incarnation, 'inc-2');
    assert.equal(summary.tpSize, 1);
    assert.equal(summary.ranks.length, 1);
    // The live incarnation with another hash is refused through either listener.
    const conflict = publishRequest(sampleRank({ tpRank: 1, tpSize: 2, incarnation: 'inc-2', compatibilityHash: 'hash-c' }));
    const refused = await req(reader, 'PUT', conflict.path, { body: conflict.body, headers: conflict.headers });
    assert.equal(refused.status, 409);
    assert.equal(codeOf(refused), 'TC_ERR_INCOMPATIBLE');
  });
}
