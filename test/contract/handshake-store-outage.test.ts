// The Redis and PostgreSQL handshake stores when their server goes away: every call fails with TC_ERR_BACKEND
// (it neither hangs nor crashes the listener's process), the same store object works again once the server
// is back with what was published before, and no password reaches an error message or a log line. Each test
// runs a server of its own to stop and start.

import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { CatalogLog } from '../../src/catalog/catalog-options.js';
import type { HandshakeStore, PublishRecord } from '../../src/handshake/store/handshake-store.js';
import { openHandshakeStore } from '../../src/handshake/store/open-handshake-store.js';
import { HANDSHAKE_LOCK_CLASS } from '../../src/handshake/store/postgres-handshake-schema.js';
import { postgresCatalogUrl, privatePostgres, privateRedis, redisCatalogUrl } from '../harness/services.js';

const PASSWORD = 'pw-Secret-83';
const OUTAGE_TEST_TIMEOUT_MS = 120_000;
const LIMITS = { ttlMs: 10 * 60_000, maxEngineBytes: 1 << 20 };
const rank = (tpRank: number): PublishRecord => ({
  engineId: 'prefill-0',
  tpRank,
  dpRank: 0,
  incarnation: 'inc-1',
  compatibilityHash: 'hash-a',
  tpSize: 2,
  payload: Buffer.from([tpRank, 0, 255, tpRank]),
});

function recordingLog(): CatalogLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (fields, message) => lines.push(`warn ${message} ${JSON.stringify(fields)}`),
    info: (fields, message) => lines.push(`info ${message} ${JSON.stringify(fields)}`),
  };
}

async function rejectsBackend(call: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(call, (e: Error & { code?: string }) => {
    assert.equal(e.code, 'TC_ERR_BACKEND', `${what}: ${e.message}`);
    assert.ok(!e.message.includes(PASSWORD), `${what}: the password shows in '${e.message}'`);
    return true;
  });
}

async function callsFail(s: HandshakeStore): Promise<void> {
  await rejectsBackend(s.head('prefill-0'), 'head');
  await rejectsBackend(s.publish(rank(1), LIMITS), 'publish');
  await rejectsBackend(s.rank('prefill-0', 0, 0), 'rank');
  await rejectsBackend(s.renew('prefill-0', 'inc-1', 60_000), 'renew');
  await rejectsBackend(s.remove('prefill-0', 'inc-0'), 'remove');
  await rejectsBackend(s.engine('prefill-0'), 'engine');
  await rejectsBackend(s.engines(), 'engines');
  await rejectsBackend(s.sweep(), 'sweep');
}

/** Retries `call` until it succeeds (the client reconnects on its own); bounded by a generous deadline. */
async function eventually<T>(call: () => Promise<T>, deadlineMs = 60_000): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > until) throw error;
      await sleep(100);
    }
  }
}

async function outageRoundTrip(s: HandshakeStore, server: { stop(): Promise<void>; start(): Promise<void> }): Promise<void> {
  await s.publish(rank(0), LIMITS);
  await server.stop();
  await callsFail(s);
  await callsFail(s);
  await server.start();
  const back = await eventually(() => s.rank('prefill-0', 0, 0));
  assert.equal(back.state, 'live');
  if (back.state === 'live') assert.deepEqual(Buffer.from(back.rank.payload), Buffer.from([0, 0, 255, 0]));
  await s.publish(rank(1), LIMITS);
  assert.equal((await s.engine('prefill-0'))?.ranks.length, 2);
}

function assertLogged(log: { lines: string[] }): void {
  assert.ok(
    log.lines.some((l) => l.startsWith('warn handshake store connection lost')),
    log.lines.join('\n'),
  );
  assert.ok(
    log.lines.some((l) => l.startsWith('info handshake store connection restored')),
    log.lines.join('\n'),
  );
  for (const line of log.lines) assert.ok(!line.includes(PASSWORD), line);
}

test(
  'redis handshake store outage: calls fail with TC_ERR_BACKEND while the server is down; the same store works once it is back',
  { timeout: OUTAGE_TEST_TIMEOUT_MS },
  async (t) => {
    const server = await privateRedis(t, { password: PASSWORD, persistent: true });
    if (server === undefined) return;
    const log = recordingLog();
    const s = await openHandshakeStore(`${server.url}/0?prefix=outage:`, { log, callTimeoutMs: 2000 });
    t.after(() => s.close());
    await outageRoundTrip(s, server);
    assertLogged(log);
  },
);

test(
  'postgres handshake store outage: calls fail with TC_ERR_BACKEND while the server is down; the same store works once it is back',
  { timeout: OUTAGE_TEST_TIMEOUT_MS },
  async (t) => {
    const server = await privatePostgres(t);
    if (server === undefined) return;
    const log = recordingLog();
    // Trust authentication ignores the password; it is there to show that it is never printed.
    const url = server.url.replace('postgres@', `postgres:${PASSWORD}@`);
    const s = await openHandshakeStore(`${url}?schema=outage`, { log, callTimeoutMs: 2000 });
    t.after(() => s.close());
    await outageRoundTrip(s, server);
    assertLogged(log);
    await server.stop();
    await rejectsBackend(openHandshakeStore(`${url}?schema=outage`, { callTimeoutMs: 2000 }), 'open while stopped');
  },
);

test('postgres handshake store: a connection lost inside a publish transaction is TC_ERR_BACKEND, not a crash', async (t) => {
  const url = await postgresCatalogUrl(t);
  if (url === undefined) return;
  const s = await openHandshakeStore(url, { callTimeoutMs: 10_000 });
  t.after(() => s.close());
  const engineId = `mid-tx-${process.pid}-${Date.now()}`;
  const record = { ...rank(0), engineId };
  // Another session holds the engine's publish lock, so the publish waits inside its transaction.
  const holder = new pg.Client({ connectionString: url.replace(/\?.*$/, '') });
  await holder.connect();
  t.after(() => holder.end());
  await holder.query('SELECT pg_advisory_lock($1, hashtext($2))', [HANDSHAKE_LOCK_CLASS, engineId]);
  const publishing = s.publish(record, LIMITS);
  const waiting = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objid = hashtext($2)::oid`;
  const { rows } = await eventually(async () => {
    const found = await holder.query<{ pid: number }>(waiting, [HANDSHAKE_LOCK_CLASS, engineId]);
    if (found.rows.length === 0) throw new Error('the publish is not waiting for the lock yet');
    return found;
  });
  await holder.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
  await rejectsBackend(publishing, 'publish cut mid-transaction');
  await holder.query('SELECT pg_advisory_unlock_all()');
  // The store carries on with a fresh connection.
  await s.publish(record, LIMITS);
  assert.equal((await s.rank(engineId, 0, 0)).state, 'live');
});

test('redis handshake store: a server that stops answering (no reset) fails calls with TC_ERR_BACKEND within the call timeout, and close() ends', async (t) => {
  const base = await redisCatalogUrl(t);
  if (base === undefined) return;
  // A relay that can stall both directions without dropping a byte, as a partition or a stopped server does.
  const stalled = { on: false };
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const target = new URL(base);
    const server = connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('error', () => undefined);
      if (stalled.on) s.pause();
    }
    client.pipe(server);
    server.pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    relay.close();
  });
  const url = new URL(base);
  url.host = `127.0.0.1:${(relay.address() as AddressInfo).port}`;
  const s = await openHandshakeStore(url.toString(), { callTimeoutMs: 500 });
  t.after(() => s.close());
  await s.publish(rank(0), LIMITS);
  stalled.on = true;
  for (const sock of sockets) sock.pause();
  // Without a deadline of its own the call waited for the server for ever (node-redis' command timeout
  // stops counting once the command is written).
  const outcome = await Promise.race([
    s.rank('prefill-0', 0, 0).then(
      () => 'answered',
      (e: Error & { code?: string }) => e.code,
    ),
    sleep(30_000).then(() => 'still waiting after 30 s'),
  ]);
  assert.equal(outcome, 'TC_ERR_BACKEND');
  stalled.on = false;
  for (const sock of sockets) sock.resume();
  const back = await eventually(() => s.rank('prefill-0', 0, 0));
  assert.equal(back.state, 'live');
  // Closing while the server is silent with a call in flight ends too (a listener's SIGTERM must not hang).
  stalled.on = true;
  for (const sock of sockets) sock.pause();
  const inFlight = s.engines().catch((e: Error & { code?: string }) => e.code);
  const closed = await Promise.race([s.close().then(() => 'closed'), sleep(30_000).then(() => 'close still waiting after 30 s')]);
  assert.equal(closed, 'closed');
  assert.equal(await inFlight, 'TC_ERR_BACKEND');
});
