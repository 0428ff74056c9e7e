// The handshake listener in-process with the memory store, over real sockets: fast-check PUT bodies (random
// bytes, random msgpack values, mutated valid payloads) and random identifier headers. Every answer is
// 200/400/409/413 with a TC_ERR code, never a 5xx, and the listener stays healthy and correct after.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { codeOf, publishRequest, rawRequest, sampleRank, type RawAnswer } from '../../../test/harness/handshake-listener.js';
import { MemoryHandshakeStore } from '../store/memory-handshake-store.js';
import { startHandshakeServer } from './handshake-server.js';

const ALLOWED = new Set([200, 400, 409, 413]);

function checkAnswer(a: RawAnswer, what: string, seen: Map<number, number>): void {
  seen.set(a.status, (seen.get(a.status) ?? 0) + 1);
  assert.ok(ALLOWED.has(a.status), `${what}: status ${a.status} ${a.body.toString().slice(0, 300)}`);
  if (a.status !== 200) assert.match(String(codeOf(a)), /^TC_ERR_[A-Z_]+$/, `${what}: ${a.body.toString().slice(0, 300)}`);
}

test('fuzzed publishes never get a 5xx and leave the listener healthy', async (t) => {
  const store = new MemoryHandshakeStore();
  const server = await startHandshakeServer({ host: '127.0.0.1', port: 0, store, maxPayloadBytes: 2048, maxEngineBytes: 16 * 1024 });
  t.after(async () => {
    await server.close();
    await store.close();
  });
  const base = sampleRank({ agentMetadata: new Uint8Array(64).fill(3) });
  const seed = publishRequest(base);
  assert.equal((await rawRequest(server.url, 'PUT', seed.path, { body: seed.body, headers: seed.headers })).status, 200);

  const seen = new Map<number, number>();
  const ids = fc.oneof(fc.constantFrom('hash-a', 'hash-b', 'inc-1', 'inc-2'), fc.string({ maxLength: 12 }));
  const headers = fc.record({ hash: ids, incarnation: ids });
  const ranks = fc.record({ tp: fc.integer({ min: 0, max: 5 }), dp: fc.integer({ min: 0, max: 2 }) });
  const put = async (body: Uint8Array, h: { hash: string; incarnation: string }, r: { tp: number; dp: number }): Promise<void> => {
    const path = `/v1/engines/prefill-0/ranks/${r.tp}/${r.dp}`;
    // A header value Node refuses to send (control characters) is not a request we can make.
    const safe = (v: string): string => (/^[\x20-\x7e]*$/.test(v) && v.trim() === v && v !== '' ? v : 'x y');
    const a = await rawRequest(server.url, 'PUT', path, {
      body: Buffer.from(body),
      headers: { 'x-tensorcast-compat-hash': safe(h.hash), 'x-tensorcast-incarnation': safe(h.incarnation) },
    });
    checkAnswer(a, `${path} ${Buffer.from(body).toString('hex').slice(0, 80)}`, seen);
  };

  // Random bytes.
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 1500, maxLength: 3000 })),
      headers,
      ranks,
      (body, h, r) => put(body, h, r),
    ),
    { numRuns: 150 },
  );
  // Random msgpack values (maps with payload-like keys among them).
  const keys = fc.constantFrom(
    'v',
    'engine_id',
    'tp_rank',
    'dp_rank',
    'compatibility_hash',
    'incarnation',
    'agent_metadata',
    'extra',
    'tp_size',
    'x',
  );
  const value = fc.oneof(fc.jsonValue(), fc.uint8Array({ maxLength: 64 }), fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }));
  const msgpackValue = fc.oneof(value, fc.dictionary(keys, value, { maxKeys: 10 }));
  await fc.assert(
    fc.asyncProperty(msgpackValue, headers, ranks, (v, h, r) => put(encode(v, { useBigInt64: true }), h, r)),
    { numRuns: 150 },
  );
  // Valid payloads with bytes flipped, cut or inserted, under the right and wrong headers.
  const valid = publishRequest(sampleRank({ tpRank: 1, agentMetadata: new Uint8Array(32).fill(9) }));
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), byte: fc.constant(0) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), async (ms, rightHeaders) => {
      let bytes = Buffer.from(valid.body);
      for (const m of ms) {
        const at = m.at % (bytes.length + 1);
        if (m.kind === 'flip' && at < bytes.length) bytes[at] = m.byte;
        else if (m.kind === 'cut') bytes = bytes.subarray(0, at);
        else bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([m.byte]), bytes.subarray(at)]);
      }
      const h = rightHeaders ? { hash: 'hash-a', incarnation: 'inc-1' } : { hash: 'hash-b', incarnation: 'inc-1' };
      await put(bytes, h, { tp: 1, dp: 0 });
    }),
    { numRuns: 150 },
  );

  // The properties reached every kind of answer (a fuzz that only ever sees 400 proves little).
  for (const status of [400, 409, 413]) assert.ok((seen.get(status) ?? 0) > 0, `no ${status} among ${JSON.stringify([...seen])}`);

  // Healthy, and a good publish/get still works byte for byte.
  assert.deepEqual((await rawRequest(server.url, 'GET', '/v1/health')).json, { ok: true, store: 'memory' });
  const after = publishRequest(sampleRank({ engineId: 'after-fuzz', incarnation: 'z', agentMetadata: new Uint8Array(100).fill(1) }));
  assert.equal((await rawRequest(server.url, 'PUT', after.path, { body: after.body, headers: after.headers })).status, 200);
  assert.deepEqual((await rawRequest(server.url, 'GET', after.path)).body, after.body);
});

test('startHandshakeServer refuses a non-loopback host without a token, and bad limits', async () => {
  const store = new MemoryHandshakeStore();
  for (const host of ['0.0.0.0', '::', '192.0.2.1']) {
    await assert.rejects(startHandshakeServer({ host, port: 0, store }), (e: { code?: string; message: string }) => {
      return e.code === 'TC_ERR_CONFIG' && e.message.includes('without a token');
    });
  }
  await assert.rejects(startHandshakeServer({ host: '127.0.0.1', port: 0, store, ttlMs: 0 }), { code: 'TC_ERR_CONFIG' });
  await assert.rejects(startHandshakeServer({ host: '127.0.0.1', port: 0, store, token: '' }), { code: 'TC_ERR_CONFIG' });
  // A token makes a wildcard listener acceptable.
  const server = await startHandshakeServer({ host: '0.0.0.0', port: 0, store, token: 'a-token-of-some-length' });
  assert.match(server.url, /^http:\/\/0\.0\.0\.0:\d+$/);
  assert.equal((await rawRequest(`http://127.0.0.1:${server.port}`, 'GET', '/v1/engines')).status, 401);
  // Its port is taken now: a second listener there is refused with the address.
  await assert.rejects(startHandshakeServer({ host: '0.0.0.0', port: server.port, store, token: 'x' }), {
    code: 'TC_ERR_ADDRESS_IN_USE',
  });
  await server.close();
  await server.close();
  await store.close();
});

test('a client that never finishes its headers loses the connection (headers timeout)', async (t) => {
  const store = new MemoryHandshakeStore();
  const server = await startHandshakeServer({ host: '127.0.0.1', port: 0, store, timeouts: { headersTimeoutMs: 300 } });
  t.after(async () => {
    await server.close();
    await store.close();
  });
  const socket = connect(server.port, '127.0.0.1');
  socket.on('error', () => undefined);
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  const closed = once(socket, 'close');
  socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\n');
  // Generous against the 300 ms asked for, yet below the 30 s default: an option that was not applied fails.
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    socket.destroy();
  }, 20_000);
  await closed;
  clearTimeout(deadline);
  assert.equal(timedOut, false, 'the listener kept a connection without complete headers for 20 s');
  assert.ok(answer === '' || answer.startsWith('HTTP/1.1 408'), answer);
  // The listener itself is fine.
  assert.equal((await rawRequest(server.url, 'GET', '/v1/health')).status, 200);
});
