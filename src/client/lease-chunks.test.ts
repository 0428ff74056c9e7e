import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ShmLeaseResponse } from '../protocol/http/loads.js';
import { LeaseChunks } from './lease-chunks.js';

const MiB = 1 << 20;
const opening = { leaseId: 'L', path: '/dev/shm/x.bin', bytes: 10 * MiB, expiresAt: 0, chunkBytes: 4 * MiB };
const result = (crcs: number[], leaseId = 'L'): { result: ShmLeaseResponse } => ({
  result: {
    leaseId,
    path: opening.path,
    bytes: opening.bytes,
    expiresAt: 0,
    checksums: { algorithm: 'crc32c', chunkBytes: 4 * MiB, crcs },
    route: 'local',
    source: 'materialized',
    viewId: null,
    totalBytes: opening.bytes,
  },
});

/** An NDJSON answer whose lines the test feeds one by one. */
function stream(): { lines: AsyncGenerator<unknown, void, undefined>; push: (line: unknown) => void; end: () => void } {
  const queue: unknown[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  async function* lines(): AsyncGenerator<unknown, void, undefined> {
    for (;;) {
      if (queue.length > 0) yield queue.shift();
      else if (ended) return;
      else await new Promise<void>((r) => (wake = r));
    }
  }
  const poke = (): void => {
    wake?.();
    wake = undefined;
  };
  return {
    lines: lines(),
    push: (line) => {
      queue.push(line);
      poke();
    },
    end: () => {
      ended = true;
      poke();
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

test('lease chunks: a progressive lease makes chunks readable as they are announced; the result must agree', async () => {
  const s = stream();
  s.push({ opened: opening });
  const lease = await LeaseChunks.open({ lines: s.lines }, opening.bytes);
  let ready = 0;
  const waiting = lease.until(3).then(() => (ready = 3));
  s.push({ ready: { firstChunk: 0, crcs: [11, 12] } });
  await lease.until(2);
  assert.deepEqual([...lease.crcs], [11, 12, 0]);
  await tick();
  assert.equal(ready, 0, 'chunk 2 not announced yet');
  s.push(result([11, 12, 13]));
  await waiting;
  await lease.ended;
  assert.deepEqual(lease.sums.crcs, [11, 12, 13]);
  assert.equal(lease.result?.source, 'materialized');
});

test('lease chunks: chunks out of order, a result that contradicts an announcement, or no result fail every wait', async () => {
  for (const bad of [
    [{ ready: { firstChunk: 1, crcs: [12] } }],
    [{ ready: { firstChunk: 0, crcs: [11] } }, result([99, 12, 13])],
    [{ ready: { firstChunk: 0, crcs: [11] } }, result([11, 12, 13], 'other')],
    [{ ready: { firstChunk: 0, crcs: [11] } }],
  ]) {
    const s = stream();
    s.push({ opened: opening });
    const lease = await LeaseChunks.open({ lines: s.lines }, opening.bytes);
    const wait = lease.until(3);
    for (const line of bad) s.push(line);
    s.end();
    await assert.rejects(wait, { code: 'TC_ERR_PROTOCOL' });
    await assert.rejects(lease.until(1), { code: 'TC_ERR_PROTOCOL' });
  }
});

test('lease chunks: a whole lease (one answer) is ready at once; a lease of another size is refused', async () => {
  const lease = await LeaseChunks.open({ json: result([1, 2, 3]).result }, opening.bytes);
  await lease.until(3);
  assert.deepEqual([...lease.crcs], [1, 2, 3]);
  await assert.rejects(LeaseChunks.open({ json: result([1, 2, 3]).result }, opening.bytes + 1), { code: 'TC_ERR_INTERNAL' });
  await assert.rejects(LeaseChunks.open({ json: result([1, 2]).result }, opening.bytes), { code: 'TC_ERR_PROTOCOL' });
});
