// A multi-part TCP transfer against a failing server on real sockets: when one part fails, the others are
// cancelled so that no byte lands in the caller's buffer after the promise rejected.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTensorcastError, tcError } from '../core/errors.js';
import { crc32c, encodeHeader, FrameType } from '../protocol/frames.js';
import { encodeError } from '../protocol/messages.js';
import { ConnectionPool } from '../transport/connection-pool.js';
import { fakeServer } from '../../test/helpers/fake-data-server.js';
import { openTcpTransfer } from './transfers.js';

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
