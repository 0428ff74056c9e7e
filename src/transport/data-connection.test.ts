// The receiving side of the data plane against a hostile or failing server on a real socket: corrupt
// DATA frames must fail the load with a checksum error, and a multi-part load whose one part fails must
// cancel the others so that no byte lands in the caller's buffer after the promise rejected.

import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { isTensorcastError, tcError } from '../core/errors.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { crc32c, encodeHeader, FrameType, type FrameHeader } from '../protocol/frames.js';
import { encodeError, End, Load, Welcome, type LoadBody } from '../protocol/messages.js';
import { openTcpTransfer } from '../client/transfers.js';
import { ConnectionPool } from './connection-pool.js';
import { DataConnection } from './data-connection.js';

/** What the fake server saw on one connection, and how it answers each LOAD. */
interface PeerLog {
  loads: LoadBody[];
  cancels: number;
  closes: number;
}

type OnLoad = (socket: Socket, requestId: number, load: LoadBody, log: PeerLog) => void;

/** A data-plane server written from the protocol alone, whose LOAD answers the test decides. */
async function fakeServer(onLoad: OnLoad): Promise<{ address: string; log: PeerLog; server: Server }> {
  const log: PeerLog = { loads: [], cancels: 0, closes: 0 };
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('close', () => log.closes++);
    const decoder = new FrameDecoder({
      maxDataBytes: 0,
      onFrame: (h: FrameHeader, payload) => {
        if (h.type === FrameType.HELLO) socket.write(Welcome.encode(0, { daemonId: 'fake', version: 1, frameBytes: 1 << 20 }));
        else if (h.type === FrameType.LOAD) {
          const body = Load.decode(payload);
          log.loads.push(body);
          onLoad(socket, h.requestId, body, log);
        } else if (h.type === FrameType.CANCEL) log.cancels++;
      },
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, log, server };
}

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

test('tcp transfer: when one part fails, the other parts are cancelled and write nothing after the reject', async (t) => {
  const timers: NodeJS.Timeout[] = [];
  const { address, log, server } = await fakeServer((socket, id, load) => {
    if (load.start === 0) {
      // The first part fails after a moment.
      timers.push(setTimeout(() => socket.write(encodeError(id, tcError('TC_ERR_IO', 'disk on fire'))), 100));
      return;
    }
    // The other part trickles 64 KiB frames for two seconds, ignoring CANCEL (a slow or hostile server).
    let at = load.start;
    const tick = setInterval(() => {
      if (at >= load.end || socket.destroyed) return clearInterval(tick);
      const payload = Buffer.alloc(Math.min(64 << 10, load.end - at), 0xab);
      socket.write(encodeHeader(FrameType.DATA, id, payload.length, at, crc32c(payload)));
      socket.write(payload);
      at += payload.length;
    }, 10);
    timers.push(tick);
  });
  t.after(() => {
    for (const x of timers) clearInterval(x);
    server.close();
  });
  const pool = new ConnectionPool(address, 'token');
  t.after(() => pool.close());
  const total = 32 << 20;
  const plan = {
    artifactId: 'tc1:x',
    key: undefined,
    view: undefined,
    viewId: undefined,
    totalBytes: total,
    tensors: [],
    metadata: {},
    files: [],
  };
  const transfer = openTcpTransfer(pool, plan, 2, () => 10_000);
  const dest = Buffer.alloc(total);
  await assert.rejects(transfer.read(0, total, dest), (e: unknown) => isTensorcastError(e, 'TC_ERR_IO'));
  const atReject = Buffer.from(dest);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(log.loads.length, 2);
  assert.equal(Buffer.compare(dest, atReject), 0, 'no byte may land in the destination after the load rejected');
  assert.ok(log.cancels >= 1 || log.closes >= 1, 'the surviving part was cancelled (CANCEL sent, or its connection closed)');
});
