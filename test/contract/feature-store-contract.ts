// The feature-store semantics, run on every backend (file://, redis://, s3://, the daemon): byte-identical
// round trips of mixed dtypes and shapes, generations (a re-put supersedes, stale refs fail), release and
// tombstones, gc/drain reports, packed and per-tensor layouts, backpressure, truncated objects, and a
// property test over random interleavings of two stores on one backend.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { Dtype } from '../../src/core/dtypes.js';
import { tcError } from '../../src/core/errors.js';
import type { BackendDeleteResult, FeatureBackend } from '../../src/features/feature-backend.js';
import { FeatureStore, type FeatureStoreOptions } from '../../src/features/feature-store.js';
import { sampleKeys, type FeatureLayout, type SampleRef, type TensorInput } from '../../src/features/sample-ref.js';
import { parseSafetensorsHeader } from '../../src/format/safetensors-header.js';
import { pattern, rejectsWith } from './connector-contract.js';

/** What a backend's test file gives the suite for one test. */
export interface FeatureContractTarget {
  /** A new backend over the test's storage: each call is another client of the same storage (another process's view). */
  backend(): Promise<FeatureBackend>;
  /** Rewrites `key` with its first `length` bytes behind the store's back; absent when the backend cannot. */
  truncate?(key: string, length: number): Promise<void>;
}

/** Mixed dtypes and shapes: a scalar, 0-size tensors, sub-byte dtypes, and a larger tensor. */
export function mixedTensors(seed: number, largeBytes = 100_000): Record<string, TensorInput> {
  const t = (dtype: Dtype, shape: number[], bytes: number, s: number): TensorInput => ({
    data: pattern(bytes, seed * 31 + s),
    dtype,
    shape,
  });
  return {
    scalar: t('F32', [], 4, 1),
    empty: t('BF16', [0, 4], 0, 2),
    'empty.rank1': t('U8', [0], 0, 3),
    bytes: t('U8', [3, 5], 15, 4),
    nibbles: t('F4', [2, 3], 3, 5),
    'model.layers.0.ids': t('I64', [2, 2], 32, 6),
    mask: t('BOOL', [7], 7, 7),
    fp8: t('F8_E4M3', [16], 16, 8),
    complex: t('C64', [2], 16, 9),
    hidden: t('F16', [largeBytes / 2], largeBytes, 10),
  };
}

/** Asserts that `got` holds exactly `tensors`. */
export function assertSame(
  got: Record<string, { data: Uint8Array; dtype: Dtype; shape: readonly number[] }>,
  tensors: Record<string, TensorInput>,
): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const g = got[name]!;
    assert.equal(g.dtype, t.dtype, name);
    assert.deepEqual([...g.shape], [...t.shape], name);
    assert.ok(Buffer.from(g.data.buffer, g.data.byteOffset, g.data.byteLength).equals(t.data), `${name}: bytes differ`);
  }
}

/**
 * A backend whose deletes fail while `failing` is set (a lease, a network error): wraps a real backend, so
 * everything else is the real thing.
 */
export function flakyDeletes(inner: FeatureBackend): FeatureBackend & { failing: boolean } {
  const wrapper = Object.create(inner) as FeatureBackend & { failing: boolean };
  wrapper.failing = false;
  wrapper.delete = (keys: readonly string[]): Promise<BackendDeleteResult[]> =>
    wrapper.failing
      ? Promise.resolve(keys.map((key) => ({ key, error: tcError('TC_ERR_BACKEND', `injected: cannot delete ${key}`) })))
      : inner.delete(keys);
  return wrapper;
}

/** Registers the contract tests for one backend. */
export function runFeatureStoreContract(
  name: string,
  target: (t: TestContext) => Promise<FeatureContractTarget | undefined>,
  /** The backend lets a test cut an object short behind its back (connectors; not a daemon, whose objects it holds). */
  options: { readonly truncatable?: boolean } = {},
): void {
  const STORE = 'train';
  const open = (t: TestContext, backend: FeatureBackend, options: FeatureStoreOptions = {}): FeatureStore => {
    const store = new FeatureStore(STORE, backend, options);
    t.after(() => backend.close());
    return store;
  };
  const withTarget = (title: string, fn: (target: FeatureContractTarget, t: TestContext) => Promise<void>): void => {
    test(`feature store contract (${name}): ${title}`, async (t) => {
      const tg = await target(t);
      if (tg === undefined) return;
      await fn(tg, t);
    });
  };

  for (const layout of ['per-tensor', 'packed'] as FeatureLayout[]) {
    withTarget(`${layout}: mixed dtypes and shapes round-trip byte-identical, allocated or into caller buffers`, async (tg, t) => {
      const producer = open(t, await tg.backend(), { layout });
      const consumer = open(t, await tg.backend());
      const tensors = mixedTensors(1);
      const ref = await producer.put('s-1', tensors);
      assert.deepEqual([ref.storeId, ref.sampleId, ref.generation, ref.layout], [STORE, 's-1', 0, layout]);
      assert.deepEqual(
        ref.specs.map((s) => [s.name, s.byteLength]),
        Object.entries(tensors)
          .map(([n, v]) => [n, v.data.length])
          .sort((a, b) => Buffer.compare(Buffer.from(a[0] as string), Buffer.from(b[0] as string))),
      );
      // The ref is plain JSON: a consumer in another process gets it through any queue.
      const passed = JSON.parse(JSON.stringify(ref)) as SampleRef;
      assertSame(await consumer.get(passed), tensors);
      const into = Object.fromEntries(Object.entries(tensors).map(([n, v]) => [n, new Uint8Array(v.data.length)]));
      const got = await consumer.get(passed, { into: { hidden: into.hidden!, scalar: into.scalar! } });
      assertSame(got, tensors);
      assert.equal(got.hidden!.data, into.hidden, 'the caller buffer is the one returned');
      assert.deepEqual(await consumer.latest('s-1'), { ...ref, fences: ref.fences });
      assert.equal(await consumer.latest('never-put'), undefined);
      const stats = await consumer.stat();
      assert.deepEqual([stats.samples, stats.generations], [1, 1]);
      assert.ok(stats.residentBytes >= 100_000, String(stats.residentBytes));
      if (layout === 'packed') {
        // One safetensors object per sample, readable by any safetensors reader.
        const backend = await tg.backend();
        t.after(() => backend.close());
        const obj = await backend.read(sampleKeys.packed(STORE, 's-1', 0), 1 << 24);
        const header = parseSafetensorsHeader(obj!.data, obj!.data.length, 'packed');
        assert.deepEqual(header.tensors.map((h) => h.name).sort(), Object.keys(tensors).sort());
        assert.equal(stats.objects, 2);
      } else {
        assert.equal(stats.objects, Object.keys(tensors).length + 1);
      }
    });

    withTarget(`${layout}: a re-put supersedes: g+1, the old generation retired, stale refs fail in every store`, async (tg, t) => {
      const a = open(t, await tg.backend(), { layout });
      const b = open(t, await tg.backend(), { layout });
      const first = mixedTensors(2, 1000);
      const second = mixedTensors(3, 2000);
      const g0 = await a.put('s', first);
      const g1 = await b.put('s', second);
      assert.equal(g1.generation, 1);
      for (const store of [a, b]) {
        await rejectsWith(store.get(g0), 'TC_ERR_NOT_FOUND', /stale|released/);
        assertSame(await store.get(g1), second);
        assert.equal((await store.latest('s'))?.generation, 1);
      }
      const stats = await a.stat();
      assert.deepEqual([stats.samples, stats.generations, stats.pendingFrees], [1, 1, 0]);
      const g2 = await a.put('s', first);
      assert.equal(g2.generation, 2);
      await rejectsWith(b.get(g1), 'TC_ERR_NOT_FOUND');
      assertSame(await b.get(g2), first);
    });
  }

  withTarget('bad input is TC_ERR_INVALID_ARGUMENT and writes nothing', async (tg, t) => {
    const store = open(t, await tg.backend());
    const ok: TensorInput = { data: pattern(8), dtype: 'F32', shape: [2] };
    for (const id of ['', 'a/b', '.', '..', '.hidden', 'x'.repeat(201), 'sp ace', 'é']) {
      await rejectsWith(store.put(id, { x: ok }), 'TC_ERR_INVALID_ARGUMENT');
    }
    for (const tname of ['a/b', '', '.x', 'new\nline']) await rejectsWith(store.put('s', { [tname]: ok }), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(store.put('s', {}), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(store.put('s', { x: { ...ok, shape: [3] } }), 'TC_ERR_INVALID_ARGUMENT', /needs 12 bytes, data has 8/);
    await rejectsWith(store.put('s', { x: { ...ok, dtype: 'F33' as Dtype } }), 'TC_ERR_INVALID_ARGUMENT', /dtype/);
    await rejectsWith(store.put('s', { x: { ...ok, shape: [-2] } }), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(store.put('s', { x: { ...ok, shape: [1.5] } }), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(store.put('s', { x: { data: pattern(1), dtype: 'F4', shape: [3] } }), 'TC_ERR_INVALID_ARGUMENT', /whole bytes/);
    await rejectsWith(store.put('s', { x: { data: [1, 2] as unknown as Uint8Array, dtype: 'U8', shape: [2] } }), 'TC_ERR_INVALID_ARGUMENT');
    assert.equal((await store.stat()).objects, 0);
    const ref = await store.put('s', { x: ok });
    await rejectsWith(store.get({ ...ref, storeId: 'other' }), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(store.get({ ...ref, generation: -1 }), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(store.get({ ...ref, specs: [{ ...ref.specs[0]!, byteLength: 9 }] }), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(store.get(ref, { into: { y: new Uint8Array(8) } }), 'TC_ERR_INVALID_ARGUMENT', /does not hold/);
    // into must be exactly the tensor's size: larger would leave a tail unfilled, smaller cannot hold it.
    await rejectsWith(store.get(ref, { into: { x: new Uint8Array(9) } }), 'TC_ERR_SHORT_READ');
    await rejectsWith(store.get(ref, { into: { x: new Uint8Array(7) } }), 'TC_ERR_DESTINATION_SIZE');
    assertSame(await store.get(ref, { into: { x: new Uint8Array(8) } }), { x: ok });
  });

  withTarget('release: a tombstone at once, then the bytes go; a later put of the same id is another sample', async (tg, t) => {
    const producer = open(t, await tg.backend());
    const consumer = open(t, await tg.backend());
    const tensors = mixedTensors(4, 1000);
    const ref = await producer.put('r', tensors);
    assertSame(await consumer.get(ref), tensors);
    await consumer.release(ref);
    await rejectsWith(consumer.get(ref), 'TC_ERR_NOT_FOUND', /released|stale/);
    await rejectsWith(producer.get(ref), 'TC_ERR_NOT_FOUND', /stale/);
    assert.equal(await producer.latest('r'), undefined);
    const stats = await consumer.stat();
    assert.deepEqual([stats.samples, stats.objects, stats.pendingFrees, stats.tombstones], [0, 0, 0, 0]);
    // Put again under the same id: generation 0 again, but the old ref never reads the new bytes.
    const again = await producer.put('r', mixedTensors(5, 1000));
    assert.equal(again.generation, 0);
    await rejectsWith(producer.get(ref), 'TC_ERR_NOT_FOUND');
    // A late release of the old ref (another process, a retry) leaves the new sample alone.
    await producer.release(ref);
    assertSame(await consumer.get(again), mixedTensors(5, 1000));
    await consumer.release(again);
    await consumer.release(again); // idempotent
  });

  withTarget('failed frees: tombstoned at once, retried by gc(), reported by drain()', async (tg, t) => {
    const flaky = flakyDeletes(await tg.backend());
    const store = open(t, flaky);
    const reader = open(t, await tg.backend());
    const ref = await store.put('f', mixedTensors(6, 1000));
    flaky.failing = true;
    await store.release(ref);
    await rejectsWith(store.get(ref), 'TC_ERR_NOT_FOUND', /released/);
    const stats = await store.stat();
    assert.ok(stats.pendingFrees >= Object.keys(mixedTensors(6)).length, JSON.stringify(stats));
    assert.equal(stats.tombstones, 1);
    const failing = await store.gc();
    assert.equal(failing.freed, 0);
    assert.ok(failing.failed.length >= 10 && failing.failed.every((f) => f.code === 'TC_ERR_BACKEND' && /injected/.test(f.message)));
    const drainFailing = await store.drain();
    assert.deepEqual(drainFailing.failed.map((f) => f.key).sort(), failing.failed.map((f) => f.key).sort());
    flaky.failing = false;
    const healed = await store.gc();
    assert.deepEqual(healed.failed, []);
    assert.ok(healed.freed >= 11, String(healed.freed));
    await rejectsWith(reader.get(ref), 'TC_ERR_NOT_FOUND');
    const after = await store.stat();
    assert.deepEqual([after.objects, after.pendingFrees, after.tombstones], [0, 0, 0]);
    // A failed retire of a superseded generation is pending too; drain() frees it.
    const g0 = await store.put('f2', mixedTensors(7, 100));
    flaky.failing = true;
    const g1 = await store.put('f2', mixedTensors(8, 100));
    await rejectsWith(store.get(g0), 'TC_ERR_NOT_FOUND');
    assert.equal((await store.stat()).generations, 2);
    flaky.failing = false;
    const drained = await store.drain();
    assert.deepEqual(drained.failed, []);
    assert.equal((await store.stat()).generations, 1);
    assertSame(await reader.get(g1), mixedTensors(8, 100));
  });

  withTarget('retainOnRelease keeps the bytes until drain() or a forced release', async (tg, t) => {
    const store = open(t, await tg.backend(), { retainOnRelease: true });
    const tensors = mixedTensors(9, 1000);
    const a = await store.put('epoch-a', tensors);
    const b = await store.put('epoch-b', tensors);
    await store.release(a);
    await store.release(b);
    assertSame(await store.get(a), tensors); // epoch 2 reads it again
    assert.equal((await store.stat()).retained, 2);
    await store.release(b, { force: true });
    await rejectsWith(store.get(b), 'TC_ERR_NOT_FOUND');
    const report = await store.drain();
    assert.deepEqual([report.retainedFreed, report.failed], [1, []]);
    await rejectsWith(store.get(a), 'TC_ERR_NOT_FOUND');
    const stats = await store.stat();
    assert.deepEqual([stats.samples, stats.objects, stats.retained], [0, 0, 0]);
  });

  withTarget('maxResidentBytes: a put over the limit is TC_ERR_BACKPRESSURE (retryable) or waits for room', async (tg, t) => {
    const producer = open(t, await tg.backend(), { maxResidentBytes: 12_000 });
    const consumer = open(t, await tg.backend());
    const sample = (seed: number): Record<string, TensorInput> => ({ x: { data: pattern(5000, seed), dtype: 'U8', shape: [5000] } });
    const a = await producer.put('a', sample(1));
    const b = await producer.put('b', sample(2));
    await assert.rejects(producer.put('c', sample(3)), (e: Error & { code?: string; retryable?: boolean }) => {
      assert.deepEqual([e.code, e.retryable], ['TC_ERR_BACKPRESSURE', true], e.message);
      return true;
    });
    assert.equal(await producer.latest('c'), undefined);
    await consumer.release(a);
    const c = await producer.put('c', sample(3));
    assertSame(await consumer.get(c), sample(3));
    // With waitForRoomMs the put waits until a consumer releases.
    const waiting = open(t, await tg.backend(), { maxResidentBytes: 12_000, waitForRoomMs: 60_000 });
    let done = false;
    const pending = waiting.put('d', sample(4)).then((ref) => {
      done = true;
      return ref;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(done, false, 'the put waited for room');
    await consumer.release(b);
    const d = await pending;
    assertSame(await consumer.get(d), sample(4));
  });

  withTarget('maxHoldAgeMs frees samples nobody released', async (tg, t) => {
    const store = open(t, await tg.backend(), { maxHoldAgeMs: 50 });
    const reader = open(t, await tg.backend());
    const ref = await store.put('old', mixedTensors(10, 100));
    const caps = store.capabilities;
    await new Promise((resolve) => setTimeout(resolve, 60));
    if (!caps.ttl) {
      const report = await store.gc();
      assert.equal(report.expired, 1);
    }
    // With TTL the backend's sweep deletes it; poll (bounded) until it is gone.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await reader.get(ref);
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'TC_ERR_NOT_FOUND');
        break;
      }
      assert.ok(Date.now() < deadline, 'the sample outlived maxHoldAgeMs by 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(await reader.latest('old'), undefined);
  });

  if (options.truncatable !== false)
    withTarget('a truncated object is TC_ERR_SHORT_READ, never a filled-looking buffer', async (tg, t) => {
      assert.ok(tg.truncate !== undefined, 'a truncatable target gives truncate()');
      for (const layout of ['per-tensor', 'packed'] as const) {
        const store = open(t, await tg.backend(), { layout });
        const tensors = mixedTensors(11, 10_000);
        const ref = await store.put(`t-${layout}`, tensors);
        const key = layout === 'packed' ? sampleKeys.packed(STORE, ref.sampleId, 0) : sampleKeys.tensor(STORE, ref.sampleId, 0, 'hidden');
        await tg.truncate(key, 9_000);
        const into = new Uint8Array(10_000).fill(0xee);
        await rejectsWith(store.get(ref, { into: { hidden: into } }), 'TC_ERR_SHORT_READ');
      }
    });

  withTarget(
    'property: two stores interleave put, re-put, get and release; a get returns its ref bytes or TC_ERR_NOT_FOUND',
    async (tg, t) => {
      const stores = [open(t, await tg.backend()), open(t, await tg.backend())];
      const atomic = stores[0]!.capabilities.atomicCommit;
      type Op = { kind: 'put'; store: number; sample: number; seed: number } | { kind: 'get' | 'release'; store: number; ref: number };
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.record({ kind: fc.constant('put' as const), store: fc.nat(1), sample: fc.nat(2), seed: fc.nat(1000) }),
        fc.record({ kind: fc.constantFrom('get' as const, 'release' as const), store: fc.nat(1), ref: fc.nat(30) }),
      );
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 3 }), { minLength: 4, maxLength: 14 }), async (steps) => {
          run++;
          const refs: { ref: SampleRef; tensors: Record<string, TensorInput> }[] = [];
          const live = new Map<string, number>(); // sample id -> index in refs of its latest unreleased ref
          const exec = async (o: Op): Promise<void> => {
            const store = stores[o.store]!;
            if (o.kind === 'put') {
              const id = `p${run}-${o.sample}`;
              const tensors: Record<string, TensorInput> = {
                a: { data: pattern(64 + (o.seed % 7), o.seed + 1), dtype: 'U8', shape: [64 + (o.seed % 7)] },
                b: { data: pattern(8, o.seed + 2), dtype: 'F64', shape: [] },
              };
              try {
                const ref = await store.put(id, tensors);
                refs.push({ ref, tensors });
                live.set(id, refs.length - 1);
              } catch (error) {
                // Only a concurrent put of the same sample may refuse this one.
                assert.equal((error as { code?: string }).code, 'TC_ERR_CONFLICT', (error as Error).message);
              }
              return;
            }
            const entry = refs[o.ref % Math.max(1, refs.length)];
            if (entry === undefined) return;
            if (o.kind === 'release') {
              await store.release(entry.ref);
              if (live.get(entry.ref.sampleId) === refs.indexOf(entry)) live.delete(entry.ref.sampleId);
              return;
            }
            try {
              assertSame(await store.get(entry.ref), entry.tensors);
            } catch (error) {
              if ((error as { code?: string }).code !== 'TC_ERR_NOT_FOUND') throw error;
            }
          };
          // The ops of a batch run at once (gets and releases race puts and re-puts). Without atomic commits
          // (connectors) the puts of a batch run one after the other: two producers of one sample at once
          // are not supported there.
          for (const batch of steps) {
            if (atomic) await Promise.all(batch.map(exec));
            else {
              const puts = batch.filter((o) => o.kind === 'put');
              const inOrder = async (): Promise<void> => {
                for (const o of puts) await exec(o);
              };
              await Promise.all([inOrder(), ...batch.filter((o) => o.kind !== 'put').map(exec)]);
            }
          }
          // Sequential checks once the dust settled: every live latest ref reads back exactly.
          for (const [id, index] of live) {
            const entry = refs[index]!;
            const latest = await stores[0]!.latest(id);
            if (latest?.generation === entry.ref.generation && JSON.stringify(latest.fences) === JSON.stringify(entry.ref.fences))
              assertSame(await stores[1]!.get(entry.ref), entry.tensors);
          }
        }),
        { numRuns: 12 },
      );
    },
  );
}
