// The receiving side of the data plane against a hostile or failing server on a real socket: corrupt
// DATA frames must fail the load with a checksum error, repeated or reordered ones with a protocol error; a good
// stream resolves with what the server said.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTensorcastError } from '../core/errors.js';
import { crc32c, encodeHeader, FrameType } from '../protocol/frames.js';
import { End } from '../protocol/messages.js';
import { fakeServer } from '../../test/helpers/fake-data-server.js';
import { DataConnection } from './data-connection.js';

const request = (start: number, end: number): Parameters<DataConnection['load']>[0] => ({
  artifactId: 'tc1:x',
  view: undefined,
  viewId: undefined,
  start,
  end,
  timeoutMs: 10_000,
});

test('data connection: a DATA frame with a wrong CRC32C fails the load with TC_ERR_CHECKSUM', async (t) => {
  const { address, server } = await fakeServer((socket, id, load) => {
    const payload = Buffer.alloc(load.end - load.start, 7);
    socket.write(encodeHeader(FrameType.DATA, id, payload.length, load.start, crc32c(payload) ^ 1));
    socket.write(payload);
    socket.write(End.encode(id, { bytes: payload.length, route: 'local', source: 'streamed', viewId: null }));
  });
  t.after(() => server.close());
  const conn = await DataConnection.open(address, 'token');
  t.after(() => conn.close());
  await assert.rejects(conn.load(request(0, 64 << 10), new Uint8Array(64 << 10)), (e: unknown) => isTensorcastError(e, 'TC_ERR_CHECKSUM'));
  assert.equal(conn.usable, false, 'a connection that delivered a corrupt frame is not reused');
});

test('data connection: a correct stream resolves with the route and source the server reported', async (t) => {
  const { address, server } = await fakeServer((socket, id, load) => {
    const payload = Buffer.alloc(load.end - load.start, 9);
    socket.write(encodeHeader(FrameType.DATA, id, payload.length, load.start, crc32c(payload)));
    socket.write(payload);
    socket.write(End.encode(id, { bytes: payload.length, route: 'resident_view', source: 'replica_hit', viewId: null }));
  });
  t.after(() => server.close());
  const conn = await DataConnection.open(address, 'token');
  t.after(() => conn.close());
  const dest = new Uint8Array(100_000);
  const end = await conn.load(request(0, dest.length), dest);
  assert.deepEqual(end, { bytes: dest.length, route: 'resident_view', source: 'replica_hit' });
  assert.ok(dest.every((b) => b === 9));
  assert.equal(conn.usable, true);
});

for (const [name, offsets] of [
  ['a repeated frame', [0, 0]],
  ['frames out of order', [32 << 10, 0]],
  ['a gap', [0, 48 << 10]],
] as const) {
  test(`data connection: ${name} in a LOAD's DATA fails it with TC_ERR_PROTOCOL, never a half-written success`, async (t) => {
    const { address, server } = await fakeServer((socket, id, load) => {
      const payload = Buffer.alloc(32 << 10, 5);
      for (const at of offsets) {
        socket.write(encodeHeader(FrameType.DATA, id, payload.length, load.start + at, crc32c(payload)));
        socket.write(payload);
      }
      socket.write(End.encode(id, { bytes: 64 << 10, route: 'local', source: 'streamed', viewId: null }));
    });
    t.after(() => server.close());
    const conn = await DataConnection.open(address, 'token');
    t.after(() => conn.close());
    await assert.rejects(conn.load(request(1000, 1000 + (64 << 10)), new Uint8Array(64 << 10)), (e: unknown) =>
      isTensorcastError(e, 'TC_ERR_PROTOCOL'),
    );
    assert.equal(conn.usable, false);
  });
}
