// Object PUT and GET on the client's data-plane connection against a fake daemon on a real socket: credit is
// never overrun, frames are checked, a put is done only on DONE, a get never resolves with a partly filled
// buffer, and an abort stops the request and closes the connection.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { isTensorcastError, tcError } from '../core/errors.js';
import { crc32c, encodeHeader, FrameType } from '../protocol/frames.js';
import { Done, encodeError, Info } from '../protocol/messages.js';
import { fakeServer, type ObjectAnswers } from '../../test/helpers/fake-data-server.js';
import { DataConnection } from './data-connection.js';

const noLoads = (): void => undefined;
const isCode = (code: string) => (e: unknown) => isTensorcastError(e) && e.code === code;

async function open(t: { after: (fn: () => void) => void }, answers: ObjectAnswers) {
  const { address, log, server } = await fakeServer(noLoads, answers);
  t.after(() => server.close());
  const conn = await DataConnection.open(address, 'token');
  t.after(() => conn.close());
  return { conn, log };
}

/** A daemon's put side: grants `initial` credit, then each landed frame's length back; DONE at the end. */
function receivingDaemon(initial: number, frameBytes: number) {
  const state = { granted: 0, received: [] as Buffer[], size: 0, maxFrame: 0, overrun: false, outOfOrder: false, badCrc: false };
  const answers: ObjectAnswers = {
    frameBytes,
    onPut: (socket, id, put) => {
      state.size = put.size;
      const eager = put.eager ?? 0;
      state.granted = Math.max(eager, Math.min(initial, put.size));
      if (put.size === 0) socket.write(Done.encode(id, { bytes: 0, version: 7 }));
      else if (state.granted > eager) socket.write(encodeHeader(FrameType.CREDIT, id, 0, state.granted - eager));
    },
    onData: (socket, h, payload, ok) => {
      const at = state.received.reduce((a, b) => a + b.length, 0);
      if (h.offset !== at) state.outOfOrder = true;
      if (h.offset + h.length > state.granted) state.overrun = true;
      if (!ok) state.badCrc = true;
      state.maxFrame = Math.max(state.maxFrame, h.length);
      state.received.push(Buffer.from(payload));
      if (at + h.length === state.size) socket.write(Done.encode(h.requestId, { bytes: state.size, version: 7 }));
      else {
        state.granted += h.length;
        socket.write(encodeHeader(FrameType.CREDIT, h.requestId, 0, h.length));
      }
    },
  };
  return { state, answers };
}

test('object put: frames within the credit and the frame size, in order, checked; done on DONE', async (t) => {
  const { state, answers } = receivingDaemon(1_500_000, 1 << 20);
  const { conn, log } = await open(t, answers);
  const source = randomBytes((3 << 20) + 12345);
  const r = await conn.put({ key: 'ns/a', timeoutMs: 10_000, txn: 't1', ifVersion: null }, source);
  assert.deepEqual(r, { bytes: source.length, version: 7 });
  assert.deepEqual(Buffer.concat(state.received), source);
  assert.equal(state.overrun, false, 'never beyond the credit');
  assert.equal(state.outOfOrder, false);
  assert.equal(state.badCrc, false);
  assert.ok(state.maxFrame <= 1 << 20, 'frames no larger than WELCOME frameBytes');
  assert.deepEqual(log.puts, [{ key: 'ns/a', size: source.length, txn: 't1', ifVersion: null, timeoutMs: 10_000, eager: 1 << 20 }]);
  assert.equal(conn.usable, true);
  // The connection takes the next request (an empty object: DONE right after the PUT).
  assert.deepEqual(await conn.put({ key: 'ns/empty', timeoutMs: 10_000 }, new Uint8Array(0)), { bytes: 0, version: 7 });
});

test('object put: nothing beyond the eager 1 MiB is sent before credit, and an ERROR mid-put rejects with its code; the connection stays usable', async (t) => {
  let dataBytes = 0;
  let puts = 0;
  const { conn } = await open(t, {
    onPut: (socket, id, put) => {
      puts++;
      assert.equal(put.eager, Math.min(put.size, 1 << 20));
      // Credit for 1000 bytes beyond the eager ones; after the first frame lands the daemon runs out of room.
      if (puts === 1) socket.write(encodeHeader(FrameType.CREDIT, id, 0, 1000));
    },
    onData: (socket, h) => {
      if (puts === 1) {
        if (dataBytes === 0) socket.write(encodeError(h.requestId, tcError('TC_ERR_BACKPRESSURE', 'namespace ns is full')));
        dataBytes += h.length;
      } else socket.write(Done.encode(h.requestId, { bytes: h.length, version: 9 }));
    },
  });
  await assert.rejects(conn.put({ key: 'ns/a', timeoutMs: 10_000 }, randomBytes((1 << 20) + 5000)), isCode('TC_ERR_BACKPRESSURE'));
  assert.ok(dataBytes <= (1 << 20) + 1000, `only the eager and the granted 1000 bytes were sent (${dataBytes})`);
  assert.equal(conn.usable, true);
  assert.deepEqual(await conn.put({ key: 'ns/b', timeoutMs: 10_000 }, randomBytes(100)), { bytes: 100, version: 9 });
});

test('object put: an eager put refused at once (ERROR before any CREDIT) rejects with its code; the connection stays usable', async (t) => {
  let puts = 0;
  const { conn } = await open(t, {
    onPut: (socket, id) => {
      puts++;
      if (puts === 1) socket.write(encodeError(id, tcError('TC_ERR_AUTH', 'wrong store token')));
    },
    onData: (socket, h) => {
      if (puts > 1) socket.write(Done.encode(h.requestId, { bytes: h.length, version: 3 }));
    },
  });
  await assert.rejects(conn.put({ key: 'ns/a', timeoutMs: 10_000 }, randomBytes(4096)), isCode('TC_ERR_AUTH'));
  assert.equal(conn.usable, true);
  assert.deepEqual(await conn.put({ key: 'ns/b', timeoutMs: 10_000 }, randomBytes(4096)), { bytes: 4096, version: 3 });
});

test('object put: a DONE before every byte was sent is a protocol error, never success', async (t) => {
  const { conn } = await open(t, {
    onPut: (socket, id) => {
      socket.write(encodeHeader(FrameType.CREDIT, id, 0, 10));
      socket.write(Done.encode(id, { bytes: (1 << 20) + 100, version: 1 }));
    },
  });
  await assert.rejects(conn.put({ key: 'ns/a', timeoutMs: 10_000 }, randomBytes((1 << 20) + 100)), isCode('TC_ERR_PROTOCOL'));
  assert.equal(conn.usable, false);
});

test('object put: a connection lost after the last byte but before DONE rejects', async (t) => {
  const { conn } = await open(t, {
    onPut: (socket, id, put) => socket.write(encodeHeader(FrameType.CREDIT, id, 0, put.size)),
    onData: (socket) => socket.destroy(),
  });
  await assert.rejects(conn.put({ key: 'ns/a', timeoutMs: 10_000 }, randomBytes(100)), isCode('TC_ERR_UNAVAILABLE'));
});

test('object put: an abort while waiting for credit sends CANCEL, rejects with the reason and closes the connection', async (t) => {
  let cancelled: () => void = () => undefined;
  const sawCancel = new Promise<void>((resolve) => (cancelled = resolve));
  let onPut: () => void = () => undefined;
  const putSeen = new Promise<void>((resolve) => (onPut = resolve));
  const { conn, log } = await open(t, { onPut: () => onPut() });
  const abort = new AbortController();
  const p = conn.put({ key: 'ns/a', timeoutMs: 10_000 }, randomBytes(100), abort.signal);
  await putSeen;
  const reason = tcError('TC_ERR_ABORTED', 'caller gave up');
  abort.abort(reason);
  await assert.rejects(p, (e) => e === reason);
  assert.equal(conn.usable, false);
  const poll = setInterval(() => log.cancels > 0 && cancelled(), 5);
  await sawCancel;
  clearInterval(poll);
});

test('object put: an abort mid-put (bytes in flight) closes the connection', async (t) => {
  const abort = new AbortController();
  const { conn } = await open(t, {
    frameBytes: 1000,
    onPut: (socket, id) => socket.write(encodeHeader(FrameType.CREDIT, id, 0, 1000)),
    onData: () => abort.abort(),
  });
  await assert.rejects(conn.put({ key: 'ns/a', timeoutMs: 10_000 }, randomBytes(5000), abort.signal));
  assert.equal(conn.usable, false);
});

/** A daemon's get side sending `object` (or the frames `send` writes). */
function sendingDaemon(object: Buffer, version: number, frame = 1 << 16) {
  return (socket: Socket, id: number): void => {
    socket.write(Info.encode(id, { size: object.length, version }));
    for (let at = 0; at < object.length; at += frame) {
      const payload = object.subarray(at, Math.min(object.length, at + frame));
      socket.write(encodeHeader(FrameType.DATA, id, payload.length, at, crc32c(payload)));
      socket.write(payload);
    }
    socket.write(Done.encode(id, { bytes: object.length, version }));
  };
}

test('object get: into a new buffer and into the caller buffer; credit granted back; expectBytes sent', async (t) => {
  const object = randomBytes(300_001);
  const { conn, log } = await open(t, { onGet: sendingDaemon(object, 42) });
  const a = await conn.get({ key: 'ns/a', timeoutMs: 10_000, storeToken: 's' }, undefined);
  assert.equal(a.version, 42);
  assert.equal(a.bytes, object.length);
  assert.deepEqual(Buffer.from(a.data), object);
  const dest = new Uint8Array(object.length);
  const b = await conn.get({ key: 'ns/a', timeoutMs: 10_000 }, dest);
  assert.equal(b.data, dest);
  assert.deepEqual(Buffer.from(dest), object);
  assert.equal(log.gets[0]!.expectBytes, undefined);
  assert.equal(log.gets[0]!.storeToken, 's');
  assert.equal(log.gets[1]!.expectBytes, object.length);
  // The server reads in order: once it answered a third GET, it had read the credit of the first two.
  await conn.get({ key: 'ns/a', timeoutMs: 10_000 }, undefined);
  assert.ok(log.credit >= 2 * object.length, 'every landed byte credited back');
  assert.equal(conn.usable, true);
});

test('object get: a DONE after fewer bytes than INFO said is TC_ERR_SHORT_READ', async (t) => {
  const object = randomBytes(100_000);
  const { conn } = await open(t, {
    onGet: (socket, id) => {
      socket.write(Info.encode(id, { size: object.length, version: 1 }));
      const payload = object.subarray(0, 60_000);
      socket.write(encodeHeader(FrameType.DATA, id, payload.length, 0, crc32c(payload)));
      socket.write(payload);
      socket.write(Done.encode(id, { bytes: object.length, version: 1 }));
    },
  });
  await assert.rejects(conn.get({ key: 'ns/a', timeoutMs: 10_000 }, undefined), isCode('TC_ERR_SHORT_READ'));
  await assert.rejects(conn.get({ key: 'ns/a', timeoutMs: 10_000 }, new Uint8Array(object.length)), isCode('TC_ERR_SHORT_READ'));
});

test('object get: a DATA frame with a bad CRC32C fails with TC_ERR_CHECKSUM and the connection is not reused', async (t) => {
  const { conn } = await open(t, {
    onGet: (socket, id) => {
      const payload = Buffer.alloc(70_000, 3);
      socket.write(Info.encode(id, { size: payload.length, version: 1 }));
      socket.write(encodeHeader(FrameType.DATA, id, payload.length, 0, crc32c(payload) ^ 1));
      socket.write(payload);
      socket.write(Done.encode(id, { bytes: payload.length, version: 1 }));
    },
  });
  await assert.rejects(conn.get({ key: 'ns/a', timeoutMs: 10_000 }, undefined), isCode('TC_ERR_CHECKSUM'));
  assert.equal(conn.usable, false);
});

test('object get: a destination larger than the object is TC_ERR_SHORT_READ, smaller TC_ERR_DESTINATION_SIZE, before any byte lands', async (t) => {
  const object = randomBytes(50_000);
  for (const [size, code] of [
    [object.length + 1, 'TC_ERR_SHORT_READ'],
    [object.length - 1, 'TC_ERR_DESTINATION_SIZE'],
  ] as const) {
    // A daemon that ignores expectBytes: the client refuses on INFO.
    const { conn, log } = await open(t, { onGet: sendingDaemon(object, 1) });
    const dest = new Uint8Array(size);
    await assert.rejects(conn.get({ key: 'ns/a', timeoutMs: 10_000 }, dest), isCode(code));
    assert.ok(
      dest.every((b) => b === 0),
      'nothing landed',
    );
    assert.equal(log.gets[0]!.expectBytes, size);
    assert.equal(conn.usable, false);
  }
});

test('object get: the daemon error (not found, lost) rejects with its code; the connection stays usable', async (t) => {
  const { conn } = await open(t, {
    onGet: (socket, id, get) =>
      socket.write(encodeError(id, tcError(get.key === 'ns/lost' ? 'TC_ERR_OBJECT_LOST' : 'TC_ERR_NOT_FOUND', `no ${get.key}`))),
  });
  await assert.rejects(conn.get({ key: 'ns/a', timeoutMs: 10_000 }, undefined), isCode('TC_ERR_NOT_FOUND'));
  await assert.rejects(conn.get({ key: 'ns/lost', timeoutMs: 10_000 }, undefined), isCode('TC_ERR_OBJECT_LOST'));
  assert.equal(conn.usable, true);
});

test('object get: DATA out of order or beyond the object is a protocol error', async (t) => {
  const { conn } = await open(t, {
    onGet: (socket, id) => {
      const payload = Buffer.alloc(100, 1);
      socket.write(Info.encode(id, { size: 200, version: 1 }));
      socket.write(encodeHeader(FrameType.DATA, id, payload.length, 100, crc32c(payload)));
      socket.write(payload);
    },
  });
  await assert.rejects(conn.get({ key: 'ns/a', timeoutMs: 10_000 }, undefined), isCode('TC_ERR_PROTOCOL'));
});

test('object get: an abort mid-stream rejects with the reason and closes the connection', async (t) => {
  const abort = new AbortController();
  const { conn, log } = await open(t, {
    onGet: (socket, id) => {
      socket.write(Info.encode(id, { size: 1 << 20, version: 1 }));
      abort.abort();
    },
  });
  const dest = new Uint8Array(1 << 20);
  await assert.rejects(
    conn.get({ key: 'ns/a', timeoutMs: 10_000 }, dest, abort.signal),
    (e: unknown) => (e as Error).name === 'AbortError',
  );
  assert.equal(conn.usable, false);
  assert.equal(log.gets.length, 1);
});

/** A daemon's answer to one GET, drawn at random: honest, or wrong in one way. */
interface Scenario {
  readonly size: number;
  readonly frames: number;
  readonly fault: 'none' | 'corrupt' | 'short' | 'done-bytes' | 'dest-larger' | 'dest-smaller' | 'extra-info';
  readonly withDest: boolean;
}

test('object get (property): resolves exactly when the daemon sent the whole object honestly, with exactly its bytes', async (t) => {
  const scenarios = new Map<string, Scenario>();
  const { address, server } = await fakeServer(noLoads, {
    onGet: (socket, id, get) => {
      const s = scenarios.get(get.key)!;
      const object = Buffer.alloc(s.size, s.size % 251);
      socket.write(Info.encode(id, { size: s.size, version: 5 }));
      if (s.fault === 'extra-info') socket.write(Info.encode(id, { size: s.size, version: 5 }));
      const step = Math.max(1, Math.ceil(s.size / s.frames));
      const sendUpTo = s.fault === 'short' ? Math.floor(s.size / 2) : s.size;
      for (let at = 0; at < sendUpTo; at += step) {
        const payload = object.subarray(at, Math.min(sendUpTo, at + step));
        const crc = crc32c(payload) ^ (s.fault === 'corrupt' && at === 0 ? 1 : 0);
        socket.write(encodeHeader(FrameType.DATA, id, payload.length, at, crc));
        socket.write(payload);
      }
      socket.write(Done.encode(id, { bytes: s.size + (s.fault === 'done-bytes' ? 1 : 0), version: 5 }));
    },
  });
  t.after(() => server.close());
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        size: fc.integer({ min: 2, max: 300_000 }),
        frames: fc.integer({ min: 1, max: 6 }),
        fault: fc.constantFrom('none', 'none', 'corrupt', 'short', 'done-bytes', 'dest-larger', 'dest-smaller', 'extra-info'),
        withDest: fc.boolean(),
      }),
      async (s: Scenario) => {
        const key = `ns/k${n++}`;
        scenarios.set(key, s);
        const conn = await DataConnection.open(address, 'token');
        try {
          const destSize = s.fault === 'dest-larger' ? s.size + 1 : s.fault === 'dest-smaller' ? s.size - 1 : s.size;
          const dest = s.withDest || s.fault.startsWith('dest') ? new Uint8Array(destSize) : undefined;
          const honest = s.fault === 'none';
          try {
            const r = await conn.get({ key, timeoutMs: 10_000 }, dest);
            assert.ok(honest, `resolved despite fault ${s.fault}`);
            assert.equal(r.bytes, s.size);
            assert.ok(Buffer.from(r.data).equals(Buffer.alloc(s.size, s.size % 251)));
            if (dest !== undefined) assert.equal(r.data, dest);
          } catch (error) {
            if (honest) throw error;
            assert.ok(isTensorcastError(error), String(error));
          }
        } finally {
          conn.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('object put: closing the connection mid-request rejects it with TC_ERR_ABORTED', async (t) => {
  let seen: () => void = () => undefined;
  const putSeen = new Promise<void>((resolve) => (seen = resolve));
  const { conn } = await open(t, { onPut: () => seen() });
  const p = conn.put({ key: 'ns/a', timeoutMs: 10_000 }, randomBytes(100));
  await putSeen;
  conn.close();
  await assert.rejects(p, isCode('TC_ERR_ABORTED'));
});
