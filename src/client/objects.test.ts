// The SDK's ObjectsClient against a fake daemon (a data-plane server and a control API written from the
// contract): batch calls report one status per item, shm puts land the caller's bytes in the daemon's file
// and commit with their CRC32C (and are deleted when anything fails), shm gets check the CRC and release
// their lease, an object not in shm is read over TCP, and list pages through.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { crc32c } from '../bytes/crc32c.js';
import { isTensorcastError, tcError } from '../core/errors.js';
import { encodeHeader, FrameType } from '../protocol/frames.js';
import { Done, encodeError, Info } from '../protocol/messages.js';
import { ConnectionPool } from '../transport/connection-pool.js';
import { ControlClient } from '../transport/control-client.js';
import { fakeServer } from '../../test/helpers/fake-data-server.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { ObjectsClient } from './objects.js';

interface Stored {
  bytes: Buffer;
  version: number;
  tier: 'memory' | 'shm';
}

/** A fake daemon: objects in a map, TCP PUT/GET on a data-plane server, the object routes over HTTP. */
async function fakeDaemon(t: TestContext, options: { corruptCommit?: boolean; otherHost?: boolean } = {}) {
  // otherHost: the paths the daemon hands out name files this process cannot see.
  const shown = (path: string): string => (options.otherHost === true ? `/nonexistent-${path}` : path);
  const dir = tempDir(t);
  const objects = new Map<string, Stored>();
  const seen = { deletedPuts: [] as string[], releasedLeases: [] as string[], storeTokens: new Set<string | undefined>(), commits: 0 };
  let version = 0;
  // Request ids are per connection.
  const parts = new Map<string, { key: string; size: number; chunks: Buffer[] }>();
  const partKey = (socket: Socket, id: number): string => `${socket.remotePort}:${id}`;
  const { address, server } = await fakeServer(() => undefined, {
    onPut: (socket, id, put) => {
      seen.storeTokens.add(put.storeToken);
      if (put.key.endsWith('/bad')) {
        socket.write(encodeError(id, tcError('TC_ERR_AUTH', `wrong store token for ${put.key}`)));
        return;
      }
      parts.set(partKey(socket, id), { key: put.key, size: put.size, chunks: [] });
      if (put.size === 0) {
        objects.set(put.key, { bytes: Buffer.alloc(0), version: ++version, tier: 'memory' });
        socket.write(Done.encode(id, { bytes: 0, version }));
      } else if (put.size > (put.eager ?? 0)) socket.write(encodeHeader(FrameType.CREDIT, id, 0, put.size - (put.eager ?? 0)));
    },
    onData: (socket, h, payload) => {
      const p = parts.get(partKey(socket, h.requestId));
      // Eager DATA of a refused put: dropped, as the daemon does.
      if (p === undefined) return;
      p.chunks.push(Buffer.from(payload));
      const bytes = Buffer.concat(p.chunks);
      if (bytes.length === p.size) {
        objects.set(p.key, { bytes, version: ++version, tier: 'memory' });
        socket.write(Done.encode(h.requestId, { bytes: p.size, version }));
      }
    },
    onGet: (socket, id, get) => {
      const o = objects.get(get.key);
      if (o === undefined) {
        socket.write(encodeError(id, tcError('TC_ERR_NOT_FOUND', `no object ${get.key}`)));
        return;
      }
      socket.write(Info.encode(id, { size: o.bytes.length, version: o.version }));
      if (o.bytes.length > 0) {
        socket.write(encodeHeader(FrameType.DATA, id, o.bytes.length, 0, crc32c(o.bytes)));
        socket.write(o.bytes);
      }
      socket.write(Done.encode(id, { bytes: o.bytes.length, version: o.version }));
    },
  });
  t.after(() => server.close());

  const shmPuts = new Map<string, { key: string; size: number; path: string }>();
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, status: number, code: string, message: string, reason?: string): void =>
    send(res, status, { error: { code, message, ...(reason === undefined ? {} : { details: { reason } }) } });
  const meta = (key: string, o: Stored) => ({
    key,
    size: o.bytes.length,
    version: o.version,
    crc: crc32c(o.bytes),
    tier: o.tier,
    createdAt: 0,
    expiresAt: null,
  });
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const body = (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>;
      const url = new URL(req.url!, 'http://x');
      const token = req.headers['x-tensorcast-store-token'];
      seen.storeTokens.add(typeof token === 'string' ? token : undefined);
      const route = `${req.method} ${url.pathname}`;
      let m: RegExpExecArray | null;
      if (route === 'POST /v1/objects/shm-puts') {
        const putId = `p${shmPuts.size + 1}`;
        const path = join(dir, putId);
        writeFileSync(path, '');
        truncateSync(path, body['size'] as number);
        shmPuts.set(putId, { key: body['key'] as string, size: body['size'] as number, path });
        send(res, 200, { putId, path: shown(path), size: body['size'], expiresAt: Date.now() + 60_000 });
      } else if ((m = /^POST \/v1\/objects\/shm-puts\/(\w+)\/commit$/.exec(route))) {
        const p = shmPuts.get(m[1]!)!;
        const bytes = readFileSync(p.path);
        seen.commits++;
        if (options.corruptCommit === true || crc32c(bytes) !== body['crc']) return fail(res, 400, 'TC_ERR_CHECKSUM', 'crc mismatch');
        objects.set(p.key, { bytes, version: ++version, tier: 'shm' });
        shmPuts.delete(m[1]!);
        send(res, 200, { key: p.key, version, bytes: bytes.length });
      } else if ((m = /^DELETE \/v1\/objects\/shm-puts\/(\w+)$/.exec(route))) {
        seen.deletedPuts.push(m[1]!);
        send(res, 200, {});
      } else if (route === 'POST /v1/objects/shm-gets') {
        const key = body['key'] as string;
        const o = objects.get(key);
        if (o === undefined) return fail(res, 404, 'TC_ERR_NOT_FOUND', `no object ${key}`);
        if (o.tier !== 'shm') return fail(res, 404, 'TC_ERR_NOT_FOUND', `${key} is not in shm`, 'not_in_shm');
        if (body['expectBytes'] !== undefined && body['expectBytes'] !== o.bytes.length)
          return fail(res, 400, 'TC_ERR_SHORT_READ', 'size mismatch');
        const path = join(dir, `g-${o.version}`);
        writeFileSync(path, o.bytes);
        send(res, 200, { leaseId: `l${o.version}`, path: shown(path), size: o.bytes.length, version: o.version, crc: crc32c(o.bytes) });
      } else if ((m = /^DELETE \/v1\/objects\/shm-gets\/(\w+)$/.exec(route))) {
        seen.releasedLeases.push(m[1]!);
        send(res, 200, {});
      } else if (route === 'GET /v1/objects/stat') {
        const key = url.searchParams.get('key')!;
        const o = objects.get(key);
        if (o === undefined) return fail(res, 404, 'TC_ERR_NOT_FOUND', `no object ${key}`);
        send(res, 200, meta(key, o));
      } else if (route === 'GET /v1/objects') {
        const prefix = url.searchParams.get('prefix') ?? '';
        const after = url.searchParams.get('after');
        const limit = Number(url.searchParams.get('limit') ?? 1000);
        const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && (after === null || k > after)).sort();
        const page = keys.slice(0, Math.min(limit, 2));
        send(res, 200, { objects: page.map((k) => meta(k, objects.get(k)!)), next: keys.length > page.length ? page.at(-1)! : null });
      } else if (route === 'POST /v1/objects/delete') {
        const results = (body['keys'] as string[]).map((key) =>
          key.endsWith('/locked')
            ? { key, ok: false, code: 'TC_ERR_AUTH', message: 'wrong store token' }
            : { key, ok: true, existed: objects.delete(key) },
        );
        send(res, 200, { results });
      } else fail(res, 404, 'TC_ERR_NOT_FOUND', `no route ${route}`);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.after(() => http.close());
  const control = new ControlClient(`http://127.0.0.1:${(http.address() as { port: number }).port}`, 'token');
  const pool = new ConnectionPool(address, 'token');
  t.after(async () => {
    pool.close();
    await control.close();
  });
  const client = new ObjectsClient({ pool, control, connections: 3, timeoutMs: 10_000, sameHost: true }, { storeToken: 'st' });
  return { client, objects, seen };
}

const code = (c: string) => (e: unknown) => isTensorcastError(e, c as never);

test('objects: putMany and getMany pipeline over the pool and report one status per item, in order', async (t) => {
  const { client, seen } = await fakeDaemon(t);
  const items = Array.from({ length: 7 }, (_, i) => ({ key: i === 3 ? 'ns/bad' : `ns/k${i}`, data: randomBytes(1000 + i) }));
  const puts = await client.putMany(items, { transport: 'tcp' });
  assert.deepEqual(
    puts.map((r) => [r.key, r.ok]),
    items.map((i) => [i.key, i.key !== 'ns/bad']),
  );
  const bad = puts[3]!;
  assert.ok(!bad.ok && bad.error.code === 'TC_ERR_AUTH');
  assert.deepEqual(seen.storeTokens, new Set(['st']), 'the store token travels with every put');
  const gets = await client.getMany(
    items.map((i, n) => (n === 1 ? { key: i.key, into: new Uint8Array(i.data.length) } : { key: i.key })),
    { transport: 'tcp', concurrency: 2 },
  );
  for (const [n, r] of gets.entries()) {
    if (n === 3) assert.ok(!r.ok && r.error.code === 'TC_ERR_NOT_FOUND');
    else assert.ok(r.ok && Buffer.from(r.value.data).equals(items[n]!.data));
  }
  // A bad key in a batch is that item's status, never a thrown batch.
  const mixed = await client.putMany([
    { key: 'no-slash', data: new Uint8Array(1) },
    { key: 'ns/ok', data: new Uint8Array(0) },
  ]);
  assert.ok(!mixed[0]!.ok && mixed[0]!.error.code === 'TC_ERR_INVALID_ARGUMENT');
  assert.ok(mixed[1]!.ok && mixed[1]!.value.bytes === 0);
});

test('objects: an shm put copies the bytes into the daemon file and commits with their CRC32C; an shm get reads them back', async (t) => {
  const { client, objects, seen } = await fakeDaemon(t);
  const data = randomBytes((2 << 20) + 3);
  const r = await client.put('ns/big', data); // auto: same host and >= 1 MiB
  assert.equal(r.bytes, data.length);
  assert.equal(objects.get('ns/big')!.tier, 'shm');
  assert.ok(objects.get('ns/big')!.bytes.equals(data));
  const back = await client.get('ns/big');
  assert.ok(Buffer.from(back.data).equals(data));
  assert.equal(back.version, r.version);
  const into = new Uint8Array(data.length);
  assert.equal((await client.get('ns/big', { into })).data, into);
  assert.ok(Buffer.from(into).equals(data));
  assert.equal(seen.releasedLeases.length, 2, 'every lease released');
  // A larger destination: refused, lease released, nothing returned.
  await assert.rejects(client.get('ns/big', { into: new Uint8Array(data.length + 1), transport: 'shm' }), code('TC_ERR_SHORT_READ'));
  assert.ok(seen.storeTokens.has('st'));
  // A large object is copied in parts on several threads; the daemon checks the combined CRC.
  const large = Buffer.alloc((70 << 20) + 5);
  for (let i = 0; i < large.length; i += 4096) large[i] = i >>> 12;
  await client.put('ns/large', large, { transport: 'shm' });
  assert.ok(objects.get('ns/large')!.bytes.equals(large));
});

test('objects: an shm put whose commit fails is deleted on the daemon', async (t) => {
  const { client, objects, seen } = await fakeDaemon(t, { corruptCommit: true });
  await assert.rejects(client.put('ns/x', randomBytes(1 << 20), { transport: 'shm' }), code('TC_ERR_CHECKSUM'));
  assert.equal(seen.commits, 1);
  assert.deepEqual(seen.deletedPuts, ['p1']);
  assert.equal(objects.has('ns/x'), false);
});

test('objects: a get of an object not in shm falls back to TCP; small objects go over TCP under auto', async (t) => {
  const { client, objects } = await fakeDaemon(t);
  const data = randomBytes(3 << 20);
  await client.put('ns/mem', data, { transport: 'tcp' });
  assert.equal(objects.get('ns/mem')!.tier, 'memory');
  assert.ok(Buffer.from((await client.get('ns/mem', { transport: 'shm' })).data).equals(data));
  assert.ok(Buffer.from((await client.get('ns/mem')).data).equals(data));
  await client.put('ns/small', Buffer.from('hello'));
  assert.equal(objects.get('ns/small')!.tier, 'memory');
  await assert.rejects(client.get('ns/missing', { transport: 'shm' }), code('TC_ERR_NOT_FOUND'));
});

test('objects: stat, list (paged), delete statuses; bad arguments are refused before any request', async (t) => {
  const { client } = await fakeDaemon(t);
  for (const k of ['a', 'b', 'c', 'd', 'e']) await client.put(`ns/${k}`, Buffer.from(k), { transport: 'tcp' });
  await client.put('other/z', Buffer.from('z'), { transport: 'tcp' });
  assert.equal((await client.stat('ns/a'))!.size, 1);
  assert.equal(await client.stat('ns/nope'), undefined);
  assert.deepEqual(
    (await client.list('ns/')).map((m) => m.key),
    ['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e'],
  );
  assert.deepEqual(
    (await client.list('ns/', { limit: 3 })).map((m) => m.key),
    ['ns/a', 'ns/b', 'ns/c'],
  );
  assert.deepEqual(
    (await client.list('ns/', { after: 'ns/c' })).map((m) => m.key),
    ['ns/d', 'ns/e'],
  );
  const del = await client.delete(['ns/a', 'ns/nope', 'ns/locked']);
  assert.deepEqual(del[0], { key: 'ns/a', ok: true, value: { existed: true } });
  assert.deepEqual(del[1], { key: 'ns/nope', ok: true, value: { existed: false } });
  assert.ok(!del[2]!.ok && del[2]!.error.code === 'TC_ERR_AUTH');
  await assert.rejects(client.put('/x', new Uint8Array(1)), code('TC_ERR_INVALID_ARGUMENT'));
  await assert.rejects(client.put('ns/x', new Uint8Array(1), { ttlMs: -1 }), code('TC_ERR_INVALID_ARGUMENT'));
  await assert.rejects(client.put('ns/x', new Uint8Array(1), { ifVersion: 1.5 }), code('TC_ERR_INVALID_ARGUMENT'));
  await assert.rejects(client.get('ns/x', { transport: 'udp' as never }), code('TC_ERR_INVALID_ARGUMENT'));
  await assert.rejects(client.commit(''), code('TC_ERR_INVALID_ARGUMENT'));
  await assert.rejects(client.ensureNamespace('a/b'), code('TC_ERR_INVALID_ARGUMENT'));
  assert.match(client.newTxn(), /^txn-[0-9a-f-]{36}$/);
});

test('objects: under auto, a daemon file this process cannot open (another host or container) means TCP', async (t) => {
  const { client, objects, seen } = await fakeDaemon(t, { otherHost: true });
  const data = randomBytes(2 << 20);
  await client.put('ns/a', data);
  assert.equal(objects.get('ns/a')!.tier, 'memory', 'sent over tcp');
  assert.deepEqual(seen.deletedPuts, ['p1'], 'the shm put was deleted');
  await assert.rejects(client.put('ns/b', data, { transport: 'shm' }), code('TC_ERR_NOT_FOUND'));
  assert.deepEqual(seen.deletedPuts, ['p1', 'p2']);
  // An object in shm whose file is not visible here: read over tcp, the lease released.
  objects.set('ns/seg', { bytes: Buffer.from(data), version: 99, tier: 'shm' });
  assert.ok(Buffer.from((await client.get('ns/seg')).data).equals(data));
  assert.deepEqual(seen.releasedLeases, ['l99']);
  await assert.rejects(client.get('ns/seg', { transport: 'shm' }), code('TC_ERR_NOT_FOUND'));
});
