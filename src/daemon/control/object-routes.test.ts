// The object routes on a real object store (fastify inject, no sockets): random bodies, queries and paths
// never get a 5xx, and every refusal is a coded error.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import fc from 'fast-check';
import { silentLogger } from '../../core/logger.js';
import { ObjectStore } from '../../store/objects/object-store.js';
import { ObjectShmHandoff } from '../objects/shm-handoff.js';
import { httpError } from '../../protocol/http/error-status.js';
import { objectRoutes } from './object-routes.js';

test('object routes: random requests never fail with a 5xx; refusals carry a TC_ERR code', async (t) => {
  const store = new ObjectStore({ memoryBytes: 1 << 20, log: silentLogger });
  await store.init();
  const handoff = new ObjectShmHandoff(store);
  const app = Fastify({ logger: false });
  app.setErrorHandler(async (error, _req, reply) => {
    const { status, body } = httpError(error);
    await reply.code(status).send(body);
  });
  void app.register(objectRoutes, { objects: store, handoff, lifecycle: { draining: false, dataAddress: '' } });
  await app.ready();
  t.after(async () => {
    handoff.close();
    await app.close();
    await store.close();
  });
  const put = await store.beginPut({ key: 'ns/a', size: 2, deadline: Date.now() + 5000 });
  await put.write(0, new Uint8Array([1, 2]));
  await put.finish();
  const routes: [string, string][] = [
    ['GET', '/v1/objects'],
    ['GET', '/v1/objects/stat'],
    ['POST', '/v1/objects/delete'],
    ['POST', '/v1/objects/commit'],
    ['POST', '/v1/objects/abort'],
    ['PUT', '/v1/namespaces/'],
    ['GET', '/v1/namespaces/'],
    ['POST', '/v1/objects/shm-gets'],
    ['POST', '/v1/objects/shm-puts/x/commit'],
    ['DELETE', '/v1/objects/shm-puts/'],
    ['DELETE', '/v1/objects/shm-gets/'],
  ];
  const json = fc.oneof(
    fc.jsonValue(),
    fc.record(
      {
        keys: fc.array(fc.oneof(fc.string(), fc.constant('ns/a'))),
        key: fc.oneof(fc.string(), fc.constant('ns/a')),
        txn: fc.string(),
        conditions: fc.array(fc.record({ key: fc.string(), ifVersion: fc.oneof(fc.integer(), fc.constant(null)) })),
        token: fc.oneof(fc.string(), fc.constant(null)),
        maxBytes: fc.oneof(fc.integer(), fc.constant(null)),
        crc: fc.integer(),
        expectBytes: fc.integer(),
      },
      { requiredKeys: [] },
    ),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...routes),
      fc.string(),
      json,
      fc.option(fc.string({ maxLength: 20 })),
      async ([method, path], tail, body, token) => {
        const url = path.endsWith('/')
          ? `${path}${encodeURIComponent(tail || 'x')}`
          : `${path}?key=${encodeURIComponent(tail)}&prefix=${encodeURIComponent(tail)}&limit=${encodeURIComponent(tail)}`;
        const r = await app.inject({
          method: method as 'GET',
          url,
          ...(method === 'GET' || method === 'DELETE' ? {} : { payload: body as object }),
          headers: token === null ? {} : { 'x-tensorcast-store-token': token.replace(/[^\x20-\x7e]/g, '') },
        });
        assert.ok(r.statusCode < 500, `${method} ${url}: ${r.statusCode} ${r.body}`);
        if (r.statusCode >= 400) assert.match(r.json<{ error: { code: string } }>().error.code, /^TC_ERR_/);
      },
    ),
    { numRuns: 400 },
  );
});
