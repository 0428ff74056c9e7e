import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'node:test';
import { ControlClient } from './control-client.js';

/** An HTTP server that drops the first request's connection without answering, then answers normally. */
async function droppingServer(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    n++;
    req.resume();
    req.on('end', () => {
      if (n === 1) {
        req.socket.destroy();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, n }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => n,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

test('control client: a request whose connection the daemon closed before any answer is sent once more (JSON body)', async () => {
  const s = await droppingServer();
  const c = new ControlClient(s.url, 'token');
  try {
    assert.deepEqual(await c.json('POST', '/v1/pushes', { key: 'k' }), { ok: true, n: 2 });
    assert.equal(s.requests(), 2);
  } finally {
    await c.close();
    await s.close();
  }
});

test('control client: a second drop is reported as TC_ERR_UNAVAILABLE, not retried again', async () => {
  let n = 0;
  const server = createServer((req) => {
    n++;
    req.resume();
    req.on('end', () => req.socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = new ControlClient(`http://127.0.0.1:${(server.address() as { port: number }).port}`, 'token');
  try {
    await assert.rejects(c.json('GET', '/v1/info'), { code: 'TC_ERR_UNAVAILABLE' });
    assert.equal(n, 2);
  } finally {
    await c.close();
    await new Promise((r) => server.close(() => r(undefined)));
  }
});
