// Connection hygiene of the control API, against a real daemon with small limits from a config file: idle
// sockets and slowloris headers are closed in time, a stalled upload is aborted with its staging removed,
// an upload that keeps sending outlives every timeout, and idle sockets filling the connection limit do
// not lock the daemon out once they time out.

import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';

const LIMITS = { httpHeadersTimeoutMs: 1500, httpIdleTimeoutMs: 1500, httpKeepAliveTimeoutMs: 1000, httpMaxConnections: 8 };

async function daemonWithLimits(t: Parameters<typeof tempDir>[0]): Promise<TestDaemon> {
  const config = join(tempDir(t), 'limits.json');
  writeFileSync(config, JSON.stringify(LIMITS));
  return startDaemon(t, { extraArgs: ['--config', config] });
}

/** A raw connection to the control port; `closedAfter` resolves with ms from open to close by the daemon. */
function rawSocket(d: TestDaemon): { socket: Socket; opened: Promise<void>; closedAfter: Promise<number>; received: () => string } {
  const url = new URL(d.controlUrl);
  const t0 = Date.now();
  let data = '';
  const socket = netConnect({ host: url.hostname, port: Number(url.port) });
  socket.on('data', (c: Buffer) => (data += c.toString()));
  socket.on('error', () => undefined);
  const opened = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const closedAfter = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - t0)));
  const guard = setTimeout(() => socket.destroy(), 20_000);
  guard.unref();
  return { socket, opened, closedAfter, received: () => data };
}

const auth = (d: TestDaemon): string => `authorization: Bearer ${d.token}\r\n`;

test('control port: idle sockets and slowloris headers are closed within the configured time', async (t) => {
  const d = await daemonWithLimits(t);
  const idle = rawSocket(d);
  const loris = rawSocket(d);
  await loris.opened;
  loris.socket.write('GET /v1/info HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => loris.socket.write('x-slow: 1\r\n'), 200);
  t.after(() => clearInterval(trickle));
  const [idleMs, lorisMs] = await Promise.all([idle.closedAfter, loris.closedAfter]);
  clearInterval(trickle);
  // Headers timeout 1.5 s, checked every 150 ms; well before the 20 s guard.
  assert.ok(idleMs >= 1000 && idleMs < 5000, `idle socket closed after ${idleMs} ms`);
  assert.ok(lorisMs >= 1000 && lorisMs < 5000, `slowloris closed after ${lorisMs} ms`);
  // A keep-alive connection idle after its answer is closed too.
  const ka = rawSocket(d);
  await ka.opened;
  ka.socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
  const kaMs = await ka.closedAfter;
  assert.match(ka.received(), /^HTTP\/1.1 200/);
  assert.ok(kaMs >= 800 && kaMs < 5000, `keep-alive connection closed after ${kaMs} ms`);
});

test('control port: a stalled upload is aborted and its staging removed; an upload that keeps sending is not', async (t) => {
  const d = await daemonWithLimits(t);
  const uploadId = async (): Promise<string> =>
    (
      (await (await fetch(`${d.controlUrl}/v1/uploads`, { method: 'POST', headers: { authorization: `Bearer ${d.token}` } })).json()) as {
        uploadId: string;
      }
    ).uploadId;
  const staging = (): string[] => readdirSync(join(d.dataDir, 'artifacts')).filter((n) => n.startsWith('.staging-'));
  const stalledId = await uploadId();
  assert.equal(staging().length, 1);
  const stalled = rawSocket(d);
  await stalled.opened;
  stalled.socket.write(
    `PUT /v1/uploads/${stalledId}/files/model.safetensors HTTP/1.1\r\nHost: x\r\n${auth(d)}content-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n`,
  );
  stalled.socket.write(Buffer.alloc(1000));
  const ms = await stalled.closedAfter;
  assert.ok(ms >= 1000 && ms < 5000, `stalled upload closed after ${ms} ms`);
  for (let i = 0; i < 50 && staging().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(staging(), [], 'the stalled upload staging is gone');
  const commit = await fetch(`${d.controlUrl}/v1/uploads/${stalledId}/commit`, {
    method: 'POST',
    headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(commit.status, 404);

  // A slow upload that keeps sending (a chunk every 500 ms for 4 s, past every timeout) completes.
  const slowId = await uploadId();
  const slow = rawSocket(d);
  await slow.opened;
  const chunks = 8;
  slow.socket.write(
    `PUT /v1/uploads/${slowId}/files/part.bin HTTP/1.1\r\nHost: x\r\n${auth(d)}content-type: application/octet-stream\r\ncontent-length: ${chunks * 100}\r\n\r\n`,
  );
  for (let i = 0; i < chunks; i++) {
    await new Promise((r) => setTimeout(r, 500));
    slow.socket.write(Buffer.alloc(100, 1));
  }
  for (let i = 0; i < 40 && !slow.received().includes('\r\n\r\n{'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(slow.received(), /^HTTP\/1.1 200[\s\S]*"bytes":800/);
  slow.socket.destroy();
});

test('control port: with the connection limit taken by idle sockets, the daemon answers again once they time out', async (t) => {
  const d = await daemonWithLimits(t);
  const hogs = Array.from({ length: LIMITS.httpMaxConnections }, () => rawSocket(d));
  await Promise.all(hogs.map((h) => h.opened));
  await new Promise((r) => setTimeout(r, 100));
  // At the limit, a new connection is dropped.
  await assert.rejects(fetch(`${d.controlUrl}/healthz`, { signal: AbortSignal.timeout(1000) }));
  await Promise.all(hogs.map((h) => h.closedAfter));
  const t0 = Date.now();
  const res = await fetch(`${d.controlUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  assert.ok(Date.now() - t0 < 2000);
});
