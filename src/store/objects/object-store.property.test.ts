import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { isTensorcastError } from '../../core/errors.js';
import type { ObjectStore } from './object-store.js';
import type { PendingPut, ReadLease } from './object-store-api.js';
import { LATER, openStore, pattern } from './test-helpers.js';

const KEYS = ['p/a', 'p/b', 'p/c'];
const MAX_BYTES = 300;
const MEMORY_BYTES = 200;
/** With spill: most puts go to disk. */
const SPILL_MEMORY_BYTES = 60;
const CHUNK = 16;

type Op =
  | { t: 'begin'; key: number; size: number; seed: number; txn: boolean }
  | { t: 'write'; i: number }
  | { t: 'finish'; i: number }
  | { t: 'abort'; i: number }
  | { t: 'commit'; cond: number | null }
  | { t: 'abortTxn' }
  | { t: 'read'; key: number }
  | { t: 'chunk'; i: number }
  | { t: 'done'; i: number }
  | { t: 'release'; i: number }
  | { t: 'delete'; key: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('begin' as const),
      key: fc.nat(2),
      size: fc.integer({ min: 0, max: 80 }),
      seed: fc.nat(255),
      txn: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('write' as const), i: fc.nat(7) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('finish' as const), i: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('abort' as const), i: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('commit' as const), cond: fc.option(fc.nat(2)) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('abortTxn' as const) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('read' as const), key: fc.nat(2) }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('chunk' as const), i: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('done' as const), i: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('release' as const), i: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('delete' as const), key: fc.nat(2) }) },
);

interface Writing {
  readonly put: PendingPut;
  readonly bytes: Buffer;
  written: number;
}
interface Reading {
  readonly lease: ReadLease;
  read: number;
  over: boolean;
  /** A chunk handed out and not yet sent (done): its bytes must stay what they were. */
  held: { readonly view: Uint8Array; readonly want: Buffer } | undefined;
}

/** Sends the held chunk: it still holds the bytes it was handed out with. */
function send(r: Reading): void {
  if (r.held === undefined) return;
  assert.deepEqual(Buffer.from(r.held.view), r.held.want, 'a chunk being copied is never freed or overwritten');
  r.held = undefined;
  r.lease.done();
}

/** Only these codes may come out of the operations the model drives. */
const EXPECTED = new Set(['TC_ERR_BACKPRESSURE', 'TC_ERR_BUDGET', 'TC_ERR_CONFLICT', 'TC_ERR_NOT_FOUND']);

function expected(error: unknown, o: Op): void {
  // A commit while a put of the transaction is still landing is refused as a caller's mistake.
  if (o.t === 'commit' && isTensorcastError(error, 'TC_ERR_INVALID_ARGUMENT')) return;
  if (!(isTensorcastError(error) && EXPECTED.has(error.code))) throw error;
}

/** What the runs did (so a run that never reached a case shows). */
const outcomes = { puts: 0, chunks: 0, fenced: 0, disk: 0 };

async function run(store: ObjectStore, ops: readonly Op[], memoryBytes: number): Promise<void> {
  const bytesOf = new Map<number, Buffer>();
  const puts: Writing[] = [];
  const reads: Reading[] = [];
  const check = (): void => {
    const info = store.namespaceInfo('p', undefined);
    assert.ok(info.residentBytes <= MAX_BYTES, `resident ${info.residentBytes} > maxBytes`);
    assert.ok(store.memoryBytesUsed <= memoryBytes, `memory ${store.memoryBytesUsed} > budget`);
  };
  const pick = <T>(list: T[], i: number): T | undefined => (list.length === 0 ? undefined : list[i % list.length]);
  for (const o of ops) {
    try {
      switch (o.t) {
        case 'begin': {
          const bytes = pattern(o.size, o.seed);
          const put = await store.beginPut({ key: KEYS[o.key]!, size: o.size, txn: o.txn ? 'T' : undefined, deadline: LATER });
          puts.push({ put, bytes, written: 0 });
          break;
        }
        case 'write': {
          const w = pick(puts, o.i);
          if (w === undefined || w.written >= w.bytes.length) break;
          const n = Math.min(CHUNK, w.bytes.length - w.written);
          await w.put.write(w.written, w.bytes.subarray(w.written, w.written + n));
          w.written += n;
          break;
        }
        case 'finish': {
          const w = pick(puts, o.i);
          if (w === undefined) break;
          puts.splice(puts.indexOf(w), 1);
          const rest = w.bytes.subarray(w.written);
          const target = w.put.target(w.written, rest.length);
          if (target !== undefined) target.set(rest);
          else await w.put.write(w.written, rest);
          const { version } = await w.put.finish();
          outcomes.puts++;
          if (w.put.tier === 'disk') outcomes.disk++;
          assert.ok(!bytesOf.has(version), 'a version is handed out once');
          bytesOf.set(version, w.bytes);
          break;
        }
        case 'abort': {
          const w = pick(puts, o.i);
          if (w === undefined) break;
          puts.splice(puts.indexOf(w), 1);
          w.put.abort();
          break;
        }
        case 'commit':
          store.commitTxn('T', o.cond === null ? [] : [{ key: KEYS[o.cond]!, ifVersion: null }], undefined);
          break;
        case 'abortTxn':
          store.abortTxn('T');
          break;
        case 'read':
          reads.push({ lease: store.openRead(KEYS[o.key]!, undefined, LATER), read: 0, over: false, held: undefined });
          break;
        case 'chunk': {
          const r = pick(reads, o.i);
          if (r === undefined || r.over) break;
          send(r);
          const { lease } = r;
          const n = Math.min(CHUNK, lease.size - r.read);
          const current = (() => {
            try {
              return store.stat(lease.key, undefined).version;
            } catch {
              return undefined;
            }
          })();
          let got: Uint8Array;
          try {
            got = await lease.chunk(r.read, n);
          } catch (error) {
            assert.ok(isTensorcastError(error, 'TC_ERR_NOT_FOUND'), String(error));
            assert.notEqual(current, lease.version, 'a read fails only when its version is gone');
            outcomes.fenced++;
            r.over = true;
            break;
          }
          assert.equal(current, lease.version, 'a read of a deleted or replaced version is fenced before its next chunk');
          outcomes.chunks++;
          const want = bytesOf.get(lease.version)!.subarray(r.read, r.read + n);
          assert.deepEqual(Buffer.from(got), want, 'a read returns the bytes of its version, never others');
          r.held = { view: got, want };
          r.read += n;
          if (r.read === lease.size) r.over = true;
          break;
        }
        case 'done': {
          const r = pick(reads, o.i);
          if (r !== undefined) send(r);
          break;
        }
        case 'release': {
          const r = pick(reads, o.i);
          if (r === undefined) break;
          reads.splice(reads.indexOf(r), 1);
          send(r);
          r.lease.release();
          break;
        }
        case 'delete':
          store.delete([KEYS[o.key]!], undefined);
          break;
      }
    } catch (error) {
      expected(error, o);
    }
    check();
  }
  for (const w of puts) w.put.abort();
  for (const r of reads) {
    send(r);
    r.lease.release();
  }
  store.abortTxn('T');
  store.delete(KEYS, undefined);
  const info = store.namespaceInfo('p', undefined);
  assert.deepEqual([info.residentBytes, info.pendingPuts, info.pendingFrees, info.objects], [0, 0, 0, 0], 'every byte freed at the end');
  assert.equal(store.memoryBytesUsed, 0);
}

test('object store property: random interleavings of put, re-put, get, delete, commit and abort never mix bytes, stay under the limits, leak nothing', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 60, size: 'max' }), async (ops) => {
      const store = await openStore({ memoryBytes: MEMORY_BYTES });
      store.configureNamespace('p', { maxBytes: MAX_BYTES }, undefined);
      try {
        await run(store, ops, MEMORY_BYTES);
      } finally {
        await store.close();
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(
    outcomes.puts > 100 && outcomes.chunks > 100 && outcomes.fenced > 10,
    `the runs reached every case: ${JSON.stringify(outcomes)}`,
  );
});

test('object store property: the same with spill (puts that do not fit in memory go to disk)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tc-objects-prop-'));
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40, size: 'max' }), async (ops) => {
        const store = await openStore({ memoryBytes: SPILL_MEMORY_BYTES, spillDir: dir });
        store.configureNamespace('p', { maxBytes: MAX_BYTES }, undefined);
        try {
          await run(store, ops, SPILL_MEMORY_BYTES);
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
    assert.ok(outcomes.disk > 10, `the runs put objects on disk: ${JSON.stringify(outcomes)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
