// Object PUT and GET on the data-plane server, with an in-memory handler: credit both ways, bytes landing in
// the object's memory (or written, for a disk-like handler), checksums, expectBytes, failures mid-put, and
// random frame sequences from a hostile peer that never crash the server.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { tcError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { crc32c, encodeDataHeader, encodeHeader, FrameType } from '../protocol/frames.js';
import { Get, Hello, Put, PUT_EAGER_MAX_BYTES } from '../protocol/messages.js';
import { badDataFrame, ObjectWire } from '../../test/helpers/object-wire.js';
import { DataServer, type LoadHandler, type ObjectHandler, type ObjectOutcome, type ObjectPutSession } from './data-server.js';

const TOKEN = 'a-token-of-enough-length';
const noLoads: LoadHandler = { serve: () => Promise.reject(tcError('TC_ERR_NOT_FOUND', 'no loads here')) };

/** Objects in a map; `disk` hands out no memory (bytes come through write). */
class MemoryObjects implements ObjectHandler {
  readonly objects = new Map<string, { bytes: Buffer; version: number }>();
  version = 0;
  aborted = 0;
  leases = 0;
  /** When set, reservations wait for it (eager DATA then arrives before the room is there). */
  gate: Promise<void> | undefined;
  constructor(private readonly disk = false) {}
  async beginPut(r: { key: string; size: number; storeToken?: string | undefined }): Promise<ObjectPutSession> {
    await this.gate;
    return this.reserve(r);
  }
  private reserve(r: { key: string; size: number; storeToken?: string | undefined }): Promise<ObjectPutSession> {
    if (r.storeToken === 'wrong') return Promise.reject(tcError('TC_ERR_AUTH', 'wrong store token'));
    const bytes = Buffer.alloc(r.size);
    let ended = false;
    return Promise.resolve({
      target: (o, n) => (this.disk ? undefined : bytes.subarray(o, o + n)),
      write: (o, b) => {
        bytes.set(b, o);
        return Promise.resolve();
      },
      finish: (crc) => {
        if (crc !== undefined && crc !== crc32c(bytes)) return Promise.reject(tcError('TC_ERR_CHECKSUM', 'object crc mismatch'));
        ended = true;
        const version = ++this.version;
        this.objects.set(r.key, { bytes, version });
        return Promise.resolve({ version });
      },
      abort: () => {
        if (!ended) this.aborted++;
        ended = true;
      },
    });
  }
  openRead(r: { key: string }) {
    const o = this.objects.get(r.key);
    if (o === undefined) throw tcError('TC_ERR_NOT_FOUND', `no object ${r.key}`);
    this.leases++;
    return {
      size: o.bytes.length,
      version: o.version,
      chunk: (at: number, n: number) => {
        if (this.objects.get(r.key) !== o) return Promise.reject(tcError('TC_ERR_NOT_FOUND', 'deleted during the read'));
        return Promise.resolve(o.bytes.subarray(at, at + n));
      },
      done: () => undefined,
      release: () => void this.leases--,
    };
  }
}

async function start(
  t: { after: (fn: () => Promise<void>) => void },
  objects: ObjectHandler,
  onObject?: (o: ObjectOutcome) => void,
): Promise<string> {
  const server = new DataServer({
    token: TOKEN,
    daemonId: 'd-test',
    handler: noLoads,
    objects,
    log: silentLogger,
    frameBytes: 1 << 20,
    ...(onObject ? { onObject } : {}),
  });
  const address = await server.listen('127.0.0.1', 0);
  t.after(() => server.close(100));
  return address;
}

async function wire(t: { after: (fn: () => Promise<void>) => void }, address: string): Promise<ObjectWire> {
  const w = await ObjectWire.open(address, TOKEN);
  t.after(() => Promise.resolve(w.close()));
  return w;
}

for (const disk of [false, true]) {
  test(`objects on the data plane (${disk ? 'written' : 'in memory'}): put then get, byte-identical, sizes 0 to beyond the window`, async (t) => {
    const store = new MemoryObjects(disk);
    const w = await wire(t, await start(t, store));
    for (const size of [0, 1, 4097, (1 << 20) + 3, (70 << 20) + 11]) {
      const data = randomBytes(size);
      const put = await w.put({ key: `ns/obj-${size}`, crc: crc32c(data) }, data);
      assert.ok(put.ok, JSON.stringify(put));
      assert.equal(put.bytes, size);
      const got = await w.get({ key: `ns/obj-${size}`, expectBytes: size });
      assert.ok(got.ok);
      assert.equal(got.version, put.version);
      assert.ok(got.data!.equals(data), `${size} bytes back`);
    }
    assert.equal(store.leases, 0);
  });
}

for (const disk of [false, true]) {
  test(`objects on the data plane (${disk ? 'written' : 'in memory'}): eager DATA sent before the reservation lands once it is there; a small put needs no CREDIT`, async (t) => {
    const store = new MemoryObjects(disk);
    const w = await wire(t, await start(t, store));
    for (const size of [1, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 5, (9 << 20) + 7]) {
      let open!: () => void;
      store.gate = new Promise((res) => (open = res));
      const data = randomBytes(size);
      const credits = w.seen.filter((x) => x === FrameType.CREDIT).length;
      const eager = Math.min(size, PUT_EAGER_MAX_BYTES);
      const put = w.put({ key: `ns/e-${size}`, crc: crc32c(data), eager }, data, { frameBytes: 300_000 });
      // Let the eager frames reach the server while the reservation waits.
      await new Promise((res) => setTimeout(res, 20));
      open();
      const r = await put;
      assert.ok(r.ok, JSON.stringify(r));
      if (size <= PUT_EAGER_MAX_BYTES) assert.equal(w.seen.filter((x) => x === FrameType.CREDIT).length, credits, 'no CREDIT');
      const got = await w.get({ key: `ns/e-${size}` });
      assert.ok(got.ok && got.data!.equals(data), `${size} bytes back`);
    }
    store.gate = undefined;
  });
}

test('objects on the data plane: an eager put the daemon refuses (auth, bad frame) leaves nothing visible and the connection usable', async (t) => {
  const store = new MemoryObjects();
  const w = await wire(t, await start(t, store));
  const data = randomBytes(700_000);
  const auth = await w.put({ key: 'ns/r', storeToken: 'wrong', eager: data.length }, data, { frameBytes: 100_000 });
  assert.ok(!auth.ok && auth.error.code === 'TC_ERR_AUTH', JSON.stringify(auth));
  const bad = await w.put({ key: 'ns/s', eager: data.length }, data, { frameBytes: 100_000, corruptFrame: 0 });
  assert.ok(!bad.ok && bad.error.code === 'TC_ERR_CHECKSUM', JSON.stringify(bad));
  const ok = await w.put({ key: 'ns/t', eager: data.length }, data, { frameBytes: 100_000 });
  assert.ok(ok.ok, JSON.stringify(ok));
  assert.deepEqual([...store.objects.keys()], ['ns/t']);
  assert.equal(w.closedWith, undefined);
});

test('objects on the data plane: DATA before CREDIT beyond the eager bytes, or eager larger than 1 MiB, is a protocol error', async (t) => {
  const store = new MemoryObjects();
  store.gate = new Promise(() => undefined);
  const w = await wire(t, await start(t, store));
  w.raw(Put.encode(1, { key: 'ns/z', size: 1000, eager: 500 }));
  const p = randomBytes(1000);
  w.raw(Buffer.concat([encodeDataHeader(1, 0, p), p]));
  await w.whenClosed();
  assert.equal(w.closedWith?.code, 'TC_ERR_PROTOCOL');
  assert.equal(store.objects.has('ns/z'), false);
  const w2 = await wire(t, await start(t, new MemoryObjects()));
  w2.raw(Put.encode(1, { key: 'ns/z', size: 4 << 20, eager: 2 << 20 }));
  await w2.whenClosed();
  assert.equal(w2.closedWith?.code, 'TC_ERR_PROTOCOL');
});

test('objects on the data plane: a bad frame checksum is TC_ERR_CHECKSUM, the put is aborted, the connection keeps working', async (t) => {
  const store = new MemoryObjects();
  const w = await wire(t, await start(t, store));
  const data = randomBytes(10_000);
  const bad = await w.put({ key: 'ns/b' }, data, { frameBytes: 1000, corruptFrame: 3 });
  assert.ok(!bad.ok && bad.error.code === 'TC_ERR_CHECKSUM', JSON.stringify(bad));
  assert.equal(store.objects.has('ns/b'), false);
  assert.equal(store.aborted, 1);
  // The frames the client sent after the bad one were dropped; the same connection still works.
  const ok = await w.put({ key: 'ns/c' }, data, { frameBytes: 1000 });
  assert.ok(ok.ok);
  const wrongWhole = await w.put({ key: 'ns/d', crc: (crc32c(data) ^ 1) >>> 0 }, data);
  assert.ok(!wrongWhole.ok && wrongWhole.error.code === 'TC_ERR_CHECKSUM');
});

test('objects on the data plane: expectBytes decides before INFO; a missing key and a wrong store token are coded errors', async (t) => {
  const store = new MemoryObjects();
  const w = await wire(t, await start(t, store));
  await w.put({ key: 'ns/x' }, randomBytes(100));
  const short = await w.get({ key: 'ns/x', expectBytes: 101 });
  assert.ok(!short.ok && short.error.code === 'TC_ERR_SHORT_READ');
  const big = await w.get({ key: 'ns/x', expectBytes: 99 });
  assert.ok(!big.ok && big.error.code === 'TC_ERR_DESTINATION_SIZE');
  assert.ok(!w.seen.includes(FrameType.INFO));
  const missing = await w.get({ key: 'ns/none' });
  assert.ok(!missing.ok && missing.error.code === 'TC_ERR_NOT_FOUND');
  const auth = await w.put({ key: 'ns/y', storeToken: 'wrong' }, randomBytes(10));
  assert.ok(!auth.ok && auth.error.code === 'TC_ERR_AUTH');
  assert.equal(store.leases, 0);
});

test('objects on the data plane: DATA beyond the credit is a protocol error; the put is aborted', async (t) => {
  const store = new MemoryObjects();
  const w = await wire(t, await start(t, store));
  // PUT then DATA before any CREDIT came.
  w.raw(Put.encode(1, { key: 'ns/z', size: 1000 }));
  const p = randomBytes(1000);
  w.raw(Buffer.concat([encodeDataHeader(1, 0, p), p]));
  await w.whenClosed();
  assert.equal(w.closedWith?.code, 'TC_ERR_PROTOCOL');
  assert.equal(store.objects.has('ns/z'), false);
});

test('objects on the data plane: a connection closed mid-put aborts the put', async (t) => {
  const store = new MemoryObjects();
  const address = await start(t, store);
  const w = await wire(t, address);
  w.raw(Put.encode(1, { key: 'ns/half', size: 2000 }));
  await new Promise((res) => setTimeout(res, 50));
  const p = randomBytes(1000);
  w.raw(Buffer.concat([encodeDataHeader(1, 0, p), p]));
  await new Promise((res) => setTimeout(res, 50));
  w.close();
  for (let i = 0; i < 100 && store.aborted === 0; i++) await new Promise((res) => setTimeout(res, 20));
  assert.equal(store.aborted, 1);
  assert.equal(store.objects.has('ns/half'), false);
});

test('objects on the data plane: DATA for a request that is no put is a protocol error; PUT and GET without an object handler fail cleanly', async (t) => {
  const server = new DataServer({ token: TOKEN, daemonId: 'd', handler: noLoads, log: silentLogger });
  const address = await server.listen('127.0.0.1', 0);
  t.after(() => server.close(100));
  const w = await wire(t, address);
  const r = await w.put({ key: 'ns/a' }, randomBytes(10));
  assert.ok(!r.ok && r.error.code === 'TC_ERR_UNAVAILABLE');
  const g = await w.get({ key: 'ns/a' });
  assert.ok(!g.ok && g.error.code === 'TC_ERR_UNAVAILABLE');
  const p = randomBytes(5000);
  w.raw(Buffer.concat([encodeDataHeader(77, 0, p), p]));
  await w.whenClosed();
  assert.equal(w.closedWith?.code, 'TC_ERR_PROTOCOL');
});

test('objects on the data plane: random frame sequences after HELLO never crash the server', async (t) => {
  const store = new MemoryObjects();
  const outcomes: ObjectOutcome[] = [];
  const address = await start(t, store, (o) => outcomes.push(o));
  const [host, port] = address.split(':');
  const frame = fc.oneof(
    fc.record({ k: fc.constant('put' as const), id: fc.integer({ min: 1, max: 4 }), size: fc.integer({ min: 0, max: 3000 }) }),
    fc.record({ k: fc.constant('get' as const), id: fc.integer({ min: 1, max: 4 }), expect: fc.option(fc.integer({ min: 0, max: 3000 })) }),
    fc.record({
      k: fc.constant('data' as const),
      id: fc.integer({ min: 0, max: 5 }),
      offset: fc.integer({ min: 0, max: 3000 }),
      len: fc.integer({ min: 0, max: 2000 }),
      bad: fc.boolean(),
    }),
    fc.record({ k: fc.constant('credit' as const), id: fc.integer({ min: 0, max: 5 }), n: fc.integer({ min: 0, max: 1 << 20 }) }),
    fc.record({ k: fc.constant('cancel' as const), id: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ k: fc.constant('junk' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(frame, { maxLength: 12 }), async (frames) => {
      const socket = connect({ host: host!, port: Number(port) });
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(Hello.encode(0, { version: 1, token: TOKEN }));
      for (const f of frames) {
        if (f.k === 'put') socket.write(Put.encode(f.id, { key: 'ns/f', size: f.size, timeoutMs: 500 }));
        else if (f.k === 'get')
          socket.write(
            Get.encode(f.id, { key: 'ns/f', credit: 1 << 20, timeoutMs: 500, ...(f.expect === null ? {} : { expectBytes: f.expect }) }),
          );
        else if (f.k === 'data') {
          const p = Buffer.alloc(f.len, 7);
          socket.write(f.bad ? badDataFrame(f.id, f.offset, p) : Buffer.concat([encodeDataHeader(f.id, f.offset, p), p]));
        } else if (f.k === 'credit') socket.write(encodeHeader(FrameType.CREDIT, f.id, 0, f.n));
        else if (f.k === 'cancel') socket.write(encodeHeader(FrameType.CANCEL, f.id, 0, 0));
        else socket.write(f.bytes);
      }
      await new Promise((res) => setTimeout(res, 30));
      socket.destroy();
      await closed;
    }),
    { numRuns: 60 },
  );
  // Still serving: a clean put and get.
  const w = await wire(t, address);
  const data = randomBytes(3333);
  const put = await w.put({ key: 'ns/after' }, data);
  assert.ok(put.ok);
  const got = await w.get({ key: 'ns/after' });
  assert.ok(got.ok && got.data!.equals(data));
  // Every put that was not committed was aborted (no room leaked): wait for the last ones to time out.
  for (let i = 0; i < 100 && store.leases > 0; i++) await new Promise((res) => setTimeout(res, 20));
  assert.equal(store.leases, 0);
});
