import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { isTensorcastError } from '../../core/errors.js';
import { COMPAT_HASH_HEADER, INCARNATION_HEADER, MSGPACK_TYPE } from '../../protocol/http/handshake.js';
import { memoryListener, rankMeta, waitFor } from '../../../test/helpers/handshake.js';
import { startHandshakeServer } from '../server/index.js';
import { MemoryHandshakeStore } from '../store/memory-handshake-store.js';
import { encodeRankMetadata } from '../rank-metadata.js';
import { handshakes } from './handshake-client.js';

const TOKEN = 'client-test-token';

function code(error: unknown): string {
  return isTensorcastError(error) ? error.code : `not a tensorcast error: ${String(error)}`;
}

/** A bare node:http peer answering every request with `handler`; closed after the test. */
async function peer(t: { after: (fn: () => Promise<void>) => void }, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('publish then get: the metadata comes back whole, blob byte-identical, then from the cache without I/O', async (t) => {
  const server = await memoryListener(t, { token: TOKEN });
  const hs = handshakes({ url: server.url, token: TOKEN });
  t.after(() => hs.close());
  const meta = { ...rankMeta('engine-a', 1, 0), extra: { model: 'llama', layers: 32 } };
  const answer = await hs.publish(meta);
  assert.equal(answer.engineId, 'engine-a');
  assert.equal(answer.replacedIncarnation, null);
  const got = await hs.get('engine-a', { tpRank: 1, dpRank: 0 });
  assert.deepEqual(got, meta);
  assert.deepEqual(Buffer.from(got.agentMetadata), Buffer.from(meta.agentMetadata));
  assert.equal(await hs.get('engine-a', { tpRank: 1, dpRank: 0 }), got);
  const s = hs.stats();
  assert.equal(s.handshakesStarted, 1);
  assert.equal(s.rankRequests, 1);
  assert.equal(s.cacheHits, 1);
  const summary = await hs.engine('engine-a');
  assert.equal(summary.incarnation, 'inc-1');
  assert.deepEqual(
    summary.ranks.map((r) => [r.tpRank, r.dpRank]),
    [[1, 0]],
  );
  assert.deepEqual(
    (await hs.engines()).map((e) => e.engineId),
    ['engine-a'],
  );
});

test('single flight: 100 concurrent get()s of one engine share one handshake, which fetches every rank asked', async (t) => {
  const server = await memoryListener(t);
  const hs = handshakes({ url: server.url });
  t.after(() => hs.close());
  const metas = [0, 1, 2, 3].map((tp) => rankMeta('engine-b', tp, 0));
  for (const m of metas) await hs.publish(m);
  const got = await Promise.all(Array.from({ length: 100 }, (_, i) => hs.get('engine-b', { tpRank: i % 4, dpRank: 0 })));
  got.forEach((m, i) => assert.deepEqual(m, metas[i % 4]));
  const s = hs.stats();
  assert.equal(s.handshakesStarted, 1);
  assert.equal(s.rankRequests, 4);
  assert.equal(s.parked, 100);
  assert.equal(s.engines['engine-b']?.maxInFlight, 1);
  assert.equal(s.engines['engine-b']?.inFlight, 0);
});

test('parked callers: gets that arrive during a handshake join it or start the next one; never two in flight', async (t) => {
  const server = await memoryListener(t);
  const reader = handshakes({ url: server.url, retry: { maxAttempts: 1000, baseDelayMs: 10, maxDelayMs: 40 }, timeoutMs: 60_000 });
  const publisher = handshakes({ url: server.url });
  t.after(() => Promise.all([reader.close(), publisher.close()]).then(() => undefined));
  // Nothing is published yet: the first handshake retries (404) while more callers arrive.
  const first = reader.get('engine-c', { tpRank: 0, dpRank: 0 });
  await waitFor('the first handshake to retry', () => reader.stats().retries > 0);
  const joined = reader.get('engine-c', { tpRank: 0, dpRank: 0 });
  const next = [1, 2, 3].map((tp) => reader.get('engine-c', { tpRank: tp, dpRank: 0 }));
  assert.equal(reader.stats().handshakesStarted, 1);
  const metas = [0, 1, 2, 3].map((tp) => rankMeta('engine-c', tp, 0));
  for (const m of metas) await publisher.publish(m);
  assert.deepEqual(await first, metas[0]);
  assert.deepEqual(await joined, metas[0]);
  assert.deepEqual(await Promise.all(next), metas.slice(1));
  const s = reader.stats();
  assert.equal(s.handshakesStarted, 2, 'the joiner shared the first handshake; ranks 1..3 went together in the second');
  assert.equal(s.engines['engine-c']?.maxInFlight, 1);
});

test('timeout: a handshake that cannot complete rejects with TC_ERR_TIMEOUT naming the last error', async (t) => {
  const server = await memoryListener(t);
  const hs = handshakes({ url: server.url, timeoutMs: 300, retry: { maxAttempts: 1000, baseDelayMs: 10, maxDelayMs: 20 } });
  t.after(() => hs.close());
  const error = await hs.get('never-published', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e);
  assert.equal(code(error), 'TC_ERR_TIMEOUT');
  assert.match((error as Error).message, /TC_ERR_NOT_FOUND/);
  // A peer that accepts the request and never answers.
  const silent = await peer(t, () => undefined);
  const hs2 = handshakes({ url: silent, timeoutMs: 200, failurePolicy: 'fail' });
  t.after(() => hs2.close());
  assert.equal(code(await hs2.get('x', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e)), 'TC_ERR_TIMEOUT');
  // The handshake itself ends at its own deadline, just after the caller's.
  await waitFor('the failed handshake to be counted', () => hs2.stats().failures === 1);
});

test("failure policy: 'fail' rejects at once against a stopped listener; 'retry' waits until it is started", async (t) => {
  const probe = await startHandshakeServer({ host: '127.0.0.1', port: 0, store: new MemoryHandshakeStore() });
  const { port, url } = probe;
  await probe.close();
  const failing = handshakes({ url, failurePolicy: 'fail' });
  const retrying = handshakes({ url, timeoutMs: 60_000, retry: { maxAttempts: 1000, baseDelayMs: 20, maxDelayMs: 100 } });
  t.after(() => Promise.all([failing.close(), retrying.close()]).then(() => undefined));
  const error = await failing.get('engine-d', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e);
  assert.equal(code(error), 'TC_ERR_UNAVAILABLE');
  assert.equal(failing.stats().retries, 0);
  const pending = retrying.get('engine-d', { tpRank: 0, dpRank: 0 });
  await waitFor('a few failed attempts', () => retrying.stats().retries >= 2);
  const store = new MemoryHandshakeStore();
  const server = await startHandshakeServer({ host: '127.0.0.1', port, store });
  t.after(() => server.close());
  const meta = rankMeta('engine-d', 0, 0);
  const publisher = handshakes({ url });
  t.after(() => publisher.close());
  await publisher.publish(meta);
  assert.deepEqual(await pending, meta);
  assert.equal(retrying.stats().handshakesStarted, 1);
});

test('errors that a retry cannot fix are not retried: wrong token, incompatible hash', async (t) => {
  const server = await memoryListener(t, { token: TOKEN });
  const publisher = handshakes({ url: server.url, token: TOKEN });
  t.after(() => publisher.close());
  await publisher.publish(rankMeta('engine-e', 0, 0, { hash: 'hash-a' }));
  const wrong = handshakes({ url: server.url, token: 'wrong', timeoutMs: 60_000 });
  t.after(() => wrong.close());
  assert.equal(code(await wrong.get('engine-e', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e)), 'TC_ERR_AUTH');
  assert.equal(wrong.stats().retries, 0);
  const reader = handshakes({ url: server.url, token: TOKEN, expectHash: 'hash-b', timeoutMs: 60_000 });
  t.after(() => reader.close());
  const error = await reader.get('engine-e', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e);
  assert.equal(code(error), 'TC_ERR_INCOMPATIBLE');
  assert.equal(reader.stats().retries, 0);
  // The listener's 409 names both hashes: the reader's as expected, the published one as actual.
  assert.deepEqual(isTensorcastError(error) && [error.details['expected'], error.details['actual']], ['hash-b', 'hash-a']);
  // Per call, the expectation can be overridden.
  assert.equal((await reader.get('engine-e', { tpRank: 0, dpRank: 0, expectHash: 'hash-a' })).compatibilityHash, 'hash-a');
});

test('incompatible hash is rejected WITHOUT decoding: a peer sending an undecodable body under another hash', async (t) => {
  const garbage = Buffer.from([0xc1, 0xc1, 0xff, 0x00, 0x13]); // 0xc1 is never valid msgpack
  let hash = 'other-hash';
  const url = await peer(t, (_req, res) => {
    // A peer that ignores the reader's header and answers 200 anyway.
    res.writeHead(200, { 'content-type': MSGPACK_TYPE, [COMPAT_HASH_HEADER]: hash, [INCARNATION_HEADER]: 'inc-1' });
    res.end(garbage);
  });
  const hs = handshakes({ url, expectHash: 'my-hash', failurePolicy: 'fail' });
  t.after(() => hs.close());
  const error = await hs.get('engine-f', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e);
  assert.equal(code(error), 'TC_ERR_INCOMPATIBLE');
  assert.deepEqual(isTensorcastError(error) && [error.details['expected'], error.details['actual']], ['my-hash', 'other-hash']);
  // The same body under the expected hash is decoded, and fails as malformed: the check above came first.
  hash = 'my-hash';
  assert.equal(code(await hs.get('engine-f', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e)), 'TC_ERR_MALFORMED');
});

test('a peer answering another rank than the one asked is TC_ERR_MALFORMED', async (t) => {
  const payload = encodeRankMetadata(rankMeta('engine-g', 2, 0));
  const url = await peer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': MSGPACK_TYPE, [COMPAT_HASH_HEADER]: 'hash-a', [INCARNATION_HEADER]: 'inc-1' });
    res.end(payload);
  });
  const hs = handshakes({ url, failurePolicy: 'fail' });
  t.after(() => hs.close());
  assert.equal(code(await hs.get('engine-g', { tpRank: 1, dpRank: 0 }).catch((e: unknown) => e)), 'TC_ERR_MALFORMED');
});

test('new incarnation: the cache serves the old one until a caller or an answer shows the new one', async (t) => {
  const server = await memoryListener(t);
  const hs = handshakes({ url: server.url });
  const publisher = handshakes({ url: server.url });
  t.after(() => Promise.all([hs.close(), publisher.close()]).then(() => undefined));
  await publisher.publish(rankMeta('engine-h', 0, 0, { incarnation: 'inc-1' }));
  await publisher.publish(rankMeta('engine-h', 1, 0, { incarnation: 'inc-1' }));
  assert.equal((await hs.get('engine-h', { tpRank: 0, dpRank: 0 })).incarnation, 'inc-1');
  // The engine restarts: inc-2 replaces every rank of inc-1 on the listener.
  const r0 = rankMeta('engine-h', 0, 0, { incarnation: 'inc-2' });
  assert.equal((await publisher.publish(r0)).replacedIncarnation, 'inc-1');
  assert.equal((await hs.get('engine-h', { tpRank: 0, dpRank: 0 })).incarnation, 'inc-1', 'cached, no I/O');
  assert.equal(hs.stats().handshakesStarted, 1);
  // A caller that knows the new incarnation drops the cache and handshakes again.
  assert.deepEqual(await hs.get('engine-h', { tpRank: 0, dpRank: 0, incarnation: 'inc-2' }), r0);
  assert.equal(hs.stats().handshakesStarted, 2);
  // A caller asking for an incarnation the listener does not have (yet) waits for it.
  const ahead = hs.get('engine-h', { tpRank: 1, dpRank: 0, incarnation: 'inc-3' });
  await waitFor('a retry for inc-3', () => hs.stats().retries > 0);
  const r1 = rankMeta('engine-h', 1, 0, { incarnation: 'inc-3' });
  await publisher.publish(r1);
  assert.deepEqual(await ahead, r1);
  // That answer showed a new incarnation: the cached inc-2 rank 0 is dropped and fetched again.
  await publisher.publish(rankMeta('engine-h', 0, 0, { incarnation: 'inc-3' }));
  const before = hs.stats().handshakesStarted;
  assert.equal((await hs.get('engine-h', { tpRank: 0, dpRank: 0 })).incarnation, 'inc-3');
  assert.equal(hs.stats().handshakesStarted, before + 1);
});

test('invalidate and maxAgeMs make the next get() handshake again; handshake() always fetches', async (t) => {
  const server = await memoryListener(t);
  const hs = handshakes({ url: server.url });
  t.after(() => hs.close());
  await hs.publish(rankMeta('engine-i', 0, 0));
  await hs.publish(rankMeta('engine-i', 1, 0));
  await hs.get('engine-i', { tpRank: 0, dpRank: 0 });
  hs.invalidate('engine-i');
  await hs.get('engine-i', { tpRank: 0, dpRank: 0 });
  assert.equal(hs.stats().handshakesStarted, 2);
  const both = await hs.handshake('engine-i', [
    { tpRank: 0, dpRank: 0 },
    { tpRank: 1, dpRank: 0 },
  ]);
  assert.deepEqual(
    both.map((m) => m.tpRank),
    [0, 1],
  );
  assert.equal(hs.stats().handshakesStarted, 3, 'one handshake for both ranks');
  const aging = handshakes({ url: server.url, maxAgeMs: 50 });
  t.after(() => aging.close());
  await aging.get('engine-i', { tpRank: 0, dpRank: 0 });
  await new Promise((r) => setTimeout(r, 100));
  await aging.get('engine-i', { tpRank: 0, dpRank: 0 });
  assert.equal(aging.stats().handshakesStarted, 2);
});

test('publisher: keeps a rank alive past its TTL, and publishes it again on a listener that lost it', async (t) => {
  const first = await startHandshakeServer({ host: '127.0.0.1', port: 0, store: new MemoryHandshakeStore(), ttlMs: 400 });
  t.after(() => first.close()); // idempotent: also closed below, mid-test
  const { url, port } = first;
  const hs = handshakes({ url });
  t.after(() => hs.close());
  const meta = rankMeta('engine-j', 0, 0);
  const publisher = await hs.publisher(meta, { renewEveryMs: 50 });
  await waitFor('renewals past the TTL', () => publisher.stats().renewals >= 12);
  hs.invalidate();
  assert.deepEqual(await hs.get('engine-j', { tpRank: 0, dpRank: 0 }), meta);
  // The listener restarts with an empty memory store: the publisher notices and publishes again.
  await first.close();
  const second = await startHandshakeServer({ host: '127.0.0.1', port, store: new MemoryHandshakeStore(), ttlMs: 400 });
  t.after(() => second.close());
  await waitFor('a republish', () => publisher.stats().republishes >= 1);
  hs.invalidate();
  assert.deepEqual(await hs.get('engine-j', { tpRank: 0, dpRank: 0 }), meta);
  await publisher.stop({ remove: true });
  hs.invalidate();
  const error = await hs.get('engine-j', { tpRank: 0, dpRank: 0, timeoutMs: 60_000 }).catch((e: unknown) => e);
  assert.ok(['TC_ERR_NOT_FOUND', 'TC_ERR_EXPIRED'].includes(code(error)), code(error));
});

test('bad arguments and close(): coded errors, parked callers released', async (t) => {
  const server = await memoryListener(t);
  const hs = handshakes({ url: server.url, timeoutMs: 60_000, retry: { maxAttempts: 1000, baseDelayMs: 10, maxDelayMs: 20 } });
  assert.equal(code(await hs.get('bad id/with slash', { tpRank: 0, dpRank: 0 }).catch((e: unknown) => e)), 'TC_ERR_INVALID_ARGUMENT');
  assert.equal(code(await hs.get('ok', { tpRank: 4096, dpRank: 0 }).catch((e: unknown) => e)), 'TC_ERR_INVALID_ARGUMENT');
  assert.throws(
    () => handshakes({ url: 'ftp://x' }),
    (e: unknown) => code(e) === 'TC_ERR_INVALID_ARGUMENT',
  );
  assert.throws(
    () => handshakes({ url: server.url, timeoutMs: 0 }),
    (e: unknown) => code(e) === 'TC_ERR_INVALID_ARGUMENT',
  );
  const controller = new AbortController();
  const aborted = hs.get('engine-k', { tpRank: 0, dpRank: 0, signal: controller.signal }).catch((e: unknown) => e);
  const parked = hs.get('engine-k', { tpRank: 1, dpRank: 0 }).catch((e: unknown) => e);
  controller.abort();
  assert.equal(code(await aborted), 'TC_ERR_ABORTED');
  await hs.close();
  assert.equal(code(await parked), 'TC_ERR_ABORTED');
});

test('publisher: the default renewal period is a third of the listener TTL whatever the skew between the clocks', async (t) => {
  // The store's clock runs 10 minutes ahead of this process (a listener on another host, Redis TIME): the
  // answer's expiresAtMs minus the local clock is no measure of the TTL.
  for (const skewMs of [10 * 60_000, -10 * 60_000]) {
    const store = new MemoryHandshakeStore({ now: () => Date.now() + skewMs });
    const server = await startHandshakeServer({ host: '127.0.0.1', port: 0, store, ttlMs: 60_000 });
    t.after(() => server.close());
    const hs = handshakes({ url: server.url });
    t.after(() => hs.close());
    const answer = await hs.publish(rankMeta('engine-skew', 0, 0));
    assert.equal(answer.ttlMs, 60_000);
    const publisher = await hs.publisher(rankMeta('engine-skew', 0, 0));
    assert.equal(publisher.stats().renewEveryMs, 20_000, `skew ${skewMs} ms`);
    await publisher.stop();
  }
});
