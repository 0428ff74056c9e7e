// The cluster catalogs when their server goes away: every call fails with TC_ERR_BACKEND (it neither hangs
// nor crashes the process), the same catalog object works again once the server is back, and no password
// reaches an error message or a log line. Each test runs a server of its own to stop and start.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog, ReplicaKey } from '../../src/catalog/catalog.js';
import type { CatalogLog } from '../../src/catalog/catalog-options.js';
import { openCatalog } from '../../src/catalog/open-catalog.js';
import { privatePostgres, privateRedis } from '../harness/services.js';

const PASSWORD = 'pw-Secret-71';
const OUTAGE_TEST_TIMEOUT_MS = 120_000;

const artifact = {
  artifactId: 'tc1:outage',
  indexHash: 'i',
  dataHash: 'd',
  totalBytes: 1,
  tensorCount: 1,
  indexJson: '{}',
  files: [],
  createdAt: 1,
};
const row: ReplicaKey = { artifactId: artifact.artifactId, viewId: 'v', daemonId: 'd1', tier: 'export' };

/** A logger that keeps what it is given. */
function recordingLog(): CatalogLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (fields, message) => lines.push(`warn ${message} ${JSON.stringify(fields)}`),
    info: (fields, message) => lines.push(`info ${message} ${JSON.stringify(fields)}`),
  };
}

/** Asserts that `call` rejects with TC_ERR_BACKEND and that the message does not show the password. */
async function rejectsBackend(call: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(call, (e: Error & { code?: string }) => {
    assert.equal(e.code, 'TC_ERR_BACKEND', `${what}: ${e.message}`);
    assert.ok(!e.message.includes(PASSWORD), `${what}: the password shows in '${e.message}'`);
    return true;
  });
}

/** Every kind of call fails while the server is down. */
async function callsFail(c: Catalog): Promise<void> {
  await rejectsBackend(c.listArtifacts(), 'listArtifacts');
  await rejectsBackend(c.getArtifact(artifact.artifactId), 'getArtifact');
  await rejectsBackend(c.bindKey('k', artifact.artifactId, 1), 'bindKey');
  await rejectsBackend(c.resolveKey('k'), 'resolveKey');
  await rejectsBackend(c.adjustReplicaFetches(row, 1), 'adjustReplicaFetches');
  await rejectsBackend(
    c.upsertDaemon({ daemonId: 'd1', controlUrl: 'http://h:1', dataAddress: 'h:2', advertiseHost: 'h', state: 'up', heartbeatAt: 2 }),
    'upsertDaemon',
  );
  await rejectsBackend(c.listReplicas(), 'listReplicas');
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

/** Writes, stops the server, checks failures, starts it, checks that the same object works and kept the data. */
async function outageRoundTrip(c: Catalog, server: { stop(): Promise<void>; start(): Promise<void> }): Promise<void> {
  await c.putArtifact(artifact);
  await c.bindKey('k', artifact.artifactId, null);
  await c.putReplica({ ...row, bytes: 10 });
  await server.stop();
  await callsFail(c);
  // Still failing, not stuck, on a second round while the client keeps retrying in the background.
  await callsFail(c);
  await server.start();
  assert.equal((await eventually(() => c.resolveKey('k')))?.version, 1);
  assert.equal((await c.bindKey('k', artifact.artifactId, 1)).version, 2);
  assert.equal(await c.adjustReplicaFetches(row, 1), 1);
  assert.deepEqual(
    (await c.listArtifacts()).map((a) => a.artifactId),
    [artifact.artifactId],
  );
}

test(
  'redis catalog outage: calls fail with TC_ERR_BACKEND while the server is down; the same catalog works once it is back',
  { timeout: OUTAGE_TEST_TIMEOUT_MS },
  async (t) => {
    const server = await privateRedis(t, { password: PASSWORD, persistent: true });
    if (server === undefined) return;
    const log = recordingLog();
    const c = await openCatalog(`${server.url}/0?prefix=outage:`, { log, callTimeoutMs: 2000 });
    t.after(() => c.close());
    await outageRoundTrip(c, server);
    assert.ok(
      log.lines.some((l) => l.startsWith('warn catalog connection lost')),
      log.lines.join('\n'),
    );
    assert.ok(
      log.lines.some((l) => l.startsWith('info catalog connection restored')),
      log.lines.join('\n'),
    );
    assert.equal(log.lines.filter((l) => l.startsWith('warn')).length, 1, log.lines.join('\n'));
    for (const line of log.lines) assert.ok(!line.includes(PASSWORD), line);
  },
);

test(
  'redis catalog outage: opening against a stopped server or with a wrong password fails with TC_ERR_BACKEND',
  { timeout: OUTAGE_TEST_TIMEOUT_MS },
  async (t) => {
    const server = await privateRedis(t, { password: PASSWORD });
    if (server === undefined) return;
    const wrong = server.url.replace(PASSWORD, `${PASSWORD}-wrong`);
    await rejectsBackend(openCatalog(wrong), 'open with a wrong password');
    await server.stop();
    await rejectsBackend(openCatalog(server.url, { callTimeoutMs: 2000 }), 'open while stopped');
  },
);

test(
  'postgres catalog outage: calls fail with TC_ERR_BACKEND while the server is down; the same catalog works once it is back',
  { timeout: OUTAGE_TEST_TIMEOUT_MS },
  async (t) => {
    const server = await privatePostgres(t);
    if (server === undefined) return;
    const log = recordingLog();
    // Trust authentication ignores the password; it is there to show that it is never printed.
    const url = server.url.replace('postgres@', `postgres:${PASSWORD}@`);
    const c = await openCatalog(`${url}?schema=outage`, { log, callTimeoutMs: 2000 });
    t.after(() => c.close());
    await outageRoundTrip(c, server);
    assert.ok(
      log.lines.some((l) => l.startsWith('warn catalog connection lost')),
      log.lines.join('\n'),
    );
    assert.ok(
      log.lines.some((l) => l.startsWith('info catalog connection restored')),
      log.lines.join('\n'),
    );
    for (const line of log.lines) assert.ok(!line.includes(PASSWORD), line);
    await server.stop();
    await rejectsBackend(openCatalog(`${url}?schema=outage`, { callTimeoutMs: 2000 }), 'open while stopped');
  },
);
