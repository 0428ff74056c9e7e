import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tcError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { FALLBACK_REASONS } from '../protocol/route-kinds.js';
import {
  EXPORT_UNAVAILABLE_REASONS,
  ExportCache,
  type ExportCacheOptions,
  type ExportEntry,
  type ExportEventName,
  type ExportKey,
} from './export-cache.js';
import { pickExportVictims } from './export-eviction.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}
function recordingLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (fields: object, message: string) =>
    void lines.push({ level, fields: fields as Record<string, unknown>, message });
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

const key = (viewId: string): ExportKey => ({ artifactId: 'art1', viewId, device: 'cpu' });
const far = () => Date.now() + 20_000;
const T0 = 1_000_000;
const TTL = 1_000;

/** A cache with a fake clock, builds the test finishes by hand, and every event, hook call and log line recorded. */
function harness(options: Partial<ExportCacheOptions> & { autoBuild?: boolean } = {}) {
  const h = {
    clock: T0,
    builds: [] as { key: ExportKey; bytes: number; deadline: number; done: Deferred<Buffer[]> }[],
    events: [] as { name: ExportEventName; entry: ExportEntry; detail: Record<string, unknown> | undefined }[],
    hooks: [] as string[],
    logs: [] as LogLine[],
    /** Finishes build `i` with `bytes` bytes filled with `i + 1`. */
    finish(i: number): void {
      const b = h.builds[i]!;
      b.done.resolve([Buffer.alloc(b.bytes, i + 1)]);
    },
    names: (): string[] => h.events.map((e) => `${e.name}:${e.entry.viewId}`),
    cache: undefined as unknown as ExportCache,
  };
  const { autoBuild, ...rest } = options;
  h.cache = new ExportCache({
    budgetBytes: 100,
    ttlMs: TTL,
    sweepIntervalMs: 0,
    log: recordingLogger(h.logs),
    now: () => h.clock,
    build: (k, bytes, deadline) => {
      const done = deferred<Buffer[]>();
      h.builds.push({ key: k, bytes, deadline, done });
      if (autoBuild === true) h.finish(h.builds.length - 1);
      return done.promise;
    },
    publish: (e) => {
      h.hooks.push(`publish:${e.viewId}`);
      return Promise.resolve();
    },
    withdraw: (e, reason) => {
      h.hooks.push(`withdraw:${e.viewId}:${reason}:${e.state}:${e.segments.length}`);
      return Promise.resolve();
    },
    unregister: (e, reason) => {
      h.hooks.push(`unregister:${e.viewId}:${reason}:${e.segments.length}`);
      return Promise.resolve();
    },
    onEvent: (name, entry, detail) => void h.events.push({ name, entry, detail }),
    ...rest,
  });
  return h;
}

/** Waits (generously bounded) until `cond` holds, letting promise chains run. */
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const hasReason = (reason: string) => (e: unknown) => {
  const err = e as { code?: string; retryable?: boolean; details?: { reason?: string } };
  assert.equal(err.code, 'TC_ERR_EXPORT_UNAVAILABLE');
  assert.equal(err.retryable, true);
  assert.equal(err.details?.reason, reason);
  return true;
};

async function ready(h: ReturnType<typeof harness>, viewId: string, bytes: number): Promise<ExportEntry> {
  const p = h.cache.prepare(key(viewId), bytes, far());
  await until(() => h.builds.some((b) => b.key.viewId === viewId && b.bytes === bytes), `build of ${viewId}`);
  h.finish(h.builds.findLastIndex((b) => b.key.viewId === viewId));
  return p;
}

test('export cache: the export-unavailable reasons other than not_found are route fallback reasons', () => {
  for (const r of EXPORT_UNAVAILABLE_REASONS) if (r !== 'not_found') assert.ok((FALLBACK_REASONS as readonly string[]).includes(r), r);
});

test('prepare: creates one entry per key, builds it once with the key, bytes and deadline, publishes it when ready', async () => {
  const h = harness();
  const deadline = far();
  const p = h.cache.prepare(key('v1'), 40, deadline);
  await until(() => h.builds.length === 1);
  assert.deepEqual(h.builds[0]!.key, key('v1'));
  assert.equal(h.builds[0]!.bytes, 40);
  assert.equal(h.builds[0]!.deadline, deadline);
  const pending = h.cache.get(key('v1'))!;
  assert.equal(pending.state, 'pending');
  assert.equal(pending.acceptingFetches, false);
  assert.deepEqual(h.cache.stats().bytes, { pending: 40, ready: 0, draining: 0 });
  h.finish(0);
  const e = await p;
  assert.equal(e.id, 'art1/v1/cpu');
  assert.equal(e.state, 'ready');
  assert.equal(e.acceptingFetches, true);
  assert.equal(e.expiresAt, T0 + TTL);
  assert.deepEqual(Buffer.concat(e.segments), Buffer.alloc(40, 1));
  assert.deepEqual(h.names(), ['create:v1']);
  await until(() => h.hooks.length === 1);
  assert.deepEqual(h.hooks, ['publish:v1']);
  assert.deepEqual(h.cache.stats(), {
    entries: { pending: 0, ready: 1, draining: 0 },
    bytes: { pending: 0, ready: 40, draining: 0 },
    budgetBytes: 100,
  });
  const created = h.logs.find((l) => l.fields.event === 'create')!;
  assert.deepEqual(
    { a: created.fields.artifactId, v: created.fields.viewId, d: created.fields.device, g: created.fields.generation },
    { a: 'art1', v: 'v1', d: 'cpu', g: e.generation },
  );
});

test('prepare: a ready entry is reused (event reuse) and its TTL refreshed; no second build', async () => {
  const h = harness({ autoBuild: true });
  const first = await h.cache.prepare(key('v1'), 40, far());
  h.clock += 600;
  const again = await h.cache.prepare(key('v1'), 40, far());
  assert.equal(h.builds.length, 1);
  assert.equal(again.generation, first.generation);
  assert.equal(again.expiresAt, h.clock + TTL);
  assert.equal(again.lastAccessAt, h.clock);
  assert.deepEqual(h.names(), ['create:v1', 'reuse:v1']);
  await assert.rejects(h.cache.prepare(key('v1'), 41, far()), { code: 'TC_ERR_INVALID_ARGUMENT' });
});

test('prepare: N concurrent prepares of one key join one build and one entry', async () => {
  const h = harness();
  const all = Array.from({ length: 8 }, () => h.cache.prepare(key('v1'), 40, far()));
  await until(() => h.builds.length === 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(h.builds.length, 1);
  h.finish(0);
  const entries = await Promise.all(all);
  assert.equal(h.builds.length, 1);
  assert.equal(new Set(entries.map((e) => e.generation)).size, 1);
  assert.ok(entries.every((e) => e.state === 'ready' && e.segments.length === 1));
  assert.deepEqual(h.names(), ['create:v1', ...Array<string>(7).fill('reuse:v1')]);
  assert.ok(h.events.slice(1).every((e) => e.detail?.joined === true));
  assert.equal(h.cache.stats().entries.ready, 1);
});

test('prepare: a failed build removes the entry and rejects every joined prepare; a later prepare starts afresh', async () => {
  const h = harness();
  const all = [1, 2, 3].map(() => h.cache.prepare(key('v1'), 40, far()));
  await until(() => h.builds.length === 1);
  h.builds[0]!.done.reject(tcError('TC_ERR_IO', 'disk on fire'));
  for (const p of all) await assert.rejects(p, { code: 'TC_ERR_IO', message: 'disk on fire' });
  assert.equal(h.cache.get(key('v1')), undefined);
  assert.deepEqual(h.cache.stats().bytes, { pending: 0, ready: 0, draining: 0 });
  assert.ok(h.logs.some((l) => l.level === 'warn' && l.message === 'export preparation failed'));
  const second = h.cache.prepare(key('v1'), 40, far());
  await until(() => h.builds.length === 2);
  h.finish(1);
  const e = await second;
  assert.equal(e.state, 'ready');
  assert.deepEqual(Buffer.concat(e.segments), Buffer.alloc(40, 2));
  // A build that returns the wrong number of bytes is a failed build too.
  const wrong = h.cache.prepare(key('v2'), 10, far());
  await until(() => h.builds.length === 3);
  h.builds[2]!.done.resolve([Buffer.alloc(9)]);
  await assert.rejects(wrong, { code: 'TC_ERR_INTERNAL', message: /9 bytes instead of 10/ });
  assert.equal(h.cache.get(key('v2')), undefined);
  // A build that throws synchronously as well.
  const throwing = new ExportCache({
    budgetBytes: 10,
    ttlMs: TTL,
    sweepIntervalMs: 0,
    log: recordingLogger([]),
    build: () => {
      throw new Error('sync');
    },
  });
  await assert.rejects(throwing.prepare(key('v1'), 1, far()), { message: 'sync' });
  assert.equal(throwing.get(key('v1')), undefined);
});

test('prepare: the deadline bounds the wait with TC_ERR_TIMEOUT; the build goes on for a later joiner', async () => {
  const h = harness();
  await assert.rejects(h.cache.prepare(key('v1'), 40, Date.now() + 20), { code: 'TC_ERR_TIMEOUT' });
  assert.equal(h.builds.length, 1);
  assert.equal(h.cache.get(key('v1'))?.state, 'pending');
  const joiner = h.cache.prepare(key('v1'), 40, far());
  h.finish(0);
  assert.equal((await joiner).state, 'ready');
  assert.equal(h.builds.length, 1);
  // A deadline already gone reserves nothing.
  await assert.rejects(h.cache.prepare(key('v2'), 10, Date.now() - 1), { code: 'TC_ERR_TIMEOUT' });
  assert.equal(h.cache.get(key('v2')), undefined);
  assert.equal(h.builds.length, 1);
});

test('prepare: a joiner with a later deadline starts afresh when the joined build ran out of its creator deadline', async () => {
  const h = harness();
  const creator = h.cache.prepare(key('v1'), 40, Date.now() + 50);
  await until(() => h.builds.length === 1);
  const joiner = h.cache.prepare(key('v1'), 40, far());
  const creatorDone = assert.rejects(creator, { code: 'TC_ERR_TIMEOUT' });
  await creatorDone;
  h.builds[0]!.done.reject(tcError('TC_ERR_TIMEOUT', 'the build ran out of its deadline'));
  await until(() => h.builds.length === 2, 'a fresh build for the joiner');
  assert.ok(h.builds[1]!.deadline > h.builds[0]!.deadline);
  h.finish(1);
  const e = await joiner;
  assert.equal(e.state, 'ready');
  assert.deepEqual(Buffer.concat(e.segments), Buffer.alloc(40, 2));
});

test('prepare: bytes above the budget, or no evictable entry, fail with export_budget_exhausted and reserve nothing', async () => {
  const h = harness({ budgetBytes: 100 });
  await assert.rejects(h.cache.prepare(key('huge'), 101, far()), hasReason('export_budget_exhausted'));
  assert.equal(h.cache.get(key('huge')), undefined);
  const a = await ready(h, 'a', 50);
  h.cache.beginFetch(key('a'), 't-a'); // active: never evicted
  const pendingB = h.cache.prepare(key('b'), 30, far()); // pending: never evicted
  await until(() => h.builds.length === 2);
  const before = h.cache.stats();
  await assert.rejects(h.cache.prepare(key('c'), 30, far()), hasReason('export_budget_exhausted'));
  assert.deepEqual(h.cache.stats(), before);
  assert.equal(h.cache.get(key('c')), undefined);
  assert.equal(h.builds.length, 2);
  assert.ok(!h.events.some((e) => e.name === 'eviction' || e.name === 'drain_start'));
  assert.equal(h.cache.get(key('a'))?.generation, a.generation);
  h.finish(1);
  await pendingB;
});

test('pressure eviction: expired idle entries first, then least recently used idle ones; never active or pending', async () => {
  const h = harness({ budgetBytes: 100 });
  await ready(h, 'a', 30); // t0
  await ready(h, 'b', 30);
  await ready(h, 'c', 30);
  h.clock = T0 + 100;
  h.cache.beginFetch(key('c'), 't1');
  h.cache.endFetch('t1'); // c: last access 100, expires 1100
  h.clock = T0 + 200;
  h.cache.beginFetch(key('a'), 't2');
  h.cache.endFetch('t2'); // a: last access 200, expires 1200
  h.clock = T0 + 1050; // b expired (1000); c is the least recently used live one
  const pD = h.cache.prepare(key('d'), 30, far());
  await until(() => h.builds.length === 4, 'd built once b is freed');
  assert.deepEqual(
    h.events.filter((e) => e.name === 'eviction').map((e) => e.entry.viewId),
    ['b'],
  );
  assert.equal(h.events.find((e) => e.name === 'eviction')!.detail?.reason, 'pressure');
  // d pending, a active, c idle (30 bytes): e (50) cannot fit without a or d, so nothing is evicted.
  h.cache.beginFetch(key('a'), 't3');
  await assert.rejects(h.cache.prepare(key('e'), 50, far()), hasReason('export_budget_exhausted'));
  assert.equal(h.cache.get(key('c'))?.state, 'ready');
  h.finish(3);
  await pD;
  // a still active: e (50) takes c (least recently used) and d (idle now), never a.
  h.clock = T0 + 1060;
  const pE = h.cache.prepare(key('e'), 50, far());
  await until(() => h.builds.length === 5);
  assert.deepEqual(
    h.events.filter((e) => e.name === 'eviction').map((e) => e.entry.viewId),
    ['b', 'c', 'd'],
  );
  assert.equal(h.cache.get(key('a'))?.state, 'ready');
  h.finish(4);
  await pE;
  await until(() => h.events.filter((e) => e.name === 'retire').length === 3);
  assert.deepEqual(h.cache.stats().bytes, { pending: 0, ready: 80, draining: 0 });
  assert.ok(h.hooks.includes('withdraw:b:pressure:draining:1') && h.hooks.includes('unregister:b:pressure:0'));
});

test('pressure eviction: the prepare waits for its victims to be freed before building', async () => {
  const withdrawn = deferred<void>();
  const h = harness({ budgetBytes: 100, withdraw: () => withdrawn.promise });
  await ready(h, 'a', 80);
  const pB = h.cache.prepare(key('b'), 50, far());
  await until(() => h.cache.get(key('a'))?.state === 'draining');
  assert.deepEqual(h.cache.stats().bytes, { pending: 50, ready: 0, draining: 80 });
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(h.builds.length, 1, 'no build while the victim still holds its bytes');
  // A third prepare that would fit the admitted budget also waits for the room: the budget is never overrun.
  const pC = h.cache.prepare(key('c'), 40, far());
  assert.equal(h.builds.length, 1);
  assert.deepEqual(h.cache.stats().bytes, { pending: 90, ready: 0, draining: 80 }, 'reserved, and not freed yet');
  withdrawn.resolve();
  await until(() => h.builds.length === 3);
  h.finish(1);
  h.finish(2);
  await Promise.all([pB, pC]);
  assert.deepEqual(h.cache.stats().bytes, { pending: 0, ready: 90, draining: 0 });
});

test('prepare: a deadline that passes while waiting for room fails the entry without building it', async () => {
  const withdrawn = deferred<void>();
  const h = harness({ budgetBytes: 100, withdraw: () => withdrawn.promise });
  await ready(h, 'a', 80);
  await assert.rejects(h.cache.prepare(key('b'), 50, Date.now() + 20), { code: 'TC_ERR_TIMEOUT' });
  assert.equal(h.cache.get(key('b'))?.state, 'pending');
  withdrawn.resolve();
  await until(() => h.cache.get(key('b')) === undefined);
  assert.equal(h.builds.length, 1);
});

test('prepare: a draining entry refuses with drain_attach_closed', async () => {
  const h = harness();
  await ready(h, 'v1', 40);
  h.cache.beginFetch(key('v1'), 't1');
  const retired = h.cache.retire(key('v1'), 'drain');
  await assert.rejects(h.cache.prepare(key('v1'), 40, far()), hasReason('drain_attach_closed'));
  h.cache.endFetch('t1');
  await retired;
  // Once gone, a prepare starts afresh with a new generation.
  const again = ready(h, 'v1', 40);
  assert.equal((await again).generation, 2);
});

test('beginFetch: not_found, entry_pending, drain_attach_closed; ready refreshes the TTL and counts the fetch once per transfer id', async () => {
  const h = harness();
  assert.throws(() => h.cache.beginFetch(key('v1'), 't1'), hasReason('not_found'));
  const p = h.cache.prepare(key('v1'), 40, far());
  await until(() => h.builds.length === 1);
  assert.throws(() => h.cache.beginFetch(key('v1'), 't1'), hasReason('entry_pending'));
  h.finish(0);
  await p;
  h.clock += 500;
  const e = h.cache.beginFetch(key('v1'), 't1');
  assert.equal(e.activeFetches, 1);
  assert.equal(e.lastAccessAt, h.clock);
  assert.equal(e.expiresAt, h.clock + TTL);
  assert.deepEqual(Buffer.concat(e.segments), Buffer.alloc(40, 1));
  assert.deepEqual(h.names(), ['create:v1', 'ttl_refresh:v1', 'fetch_begin:v1']);
  // Idempotent per transfer id.
  h.clock += 10;
  assert.equal(h.cache.beginFetch(key('v1'), 't1').activeFetches, 1);
  assert.equal(h.cache.get(key('v1'))?.activeFetches, 1);
  assert.equal(h.events.filter((x) => x.name === 'fetch_begin').length, 1);
  h.cache.beginFetch(key('v1'), 't2');
  assert.equal(h.cache.get(key('v1'))?.activeFetches, 2);
  // The same id bound to another entry is a caller bug.
  await ready(h, 'v2', 10);
  assert.throws(() => h.cache.beginFetch(key('v2'), 't1'), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => h.cache.beginFetch(key('v2'), ''), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => h.cache.beginFetch({ artifactId: 'a/b', viewId: 'v', device: 'cpu' }, 't9'), { code: 'TC_ERR_INVALID_ARGUMENT' });
  // Draining: new fetches refused.
  h.cache.endFetch('t1');
  h.cache.endFetch('t2');
  const retiring = h.cache.retire(key('v1'), 'drain');
  assert.throws(() => h.cache.beginFetch(key('v1'), 't3'), hasReason('drain_attach_closed'));
  await retiring;
});

test('endFetch: tolerant of unknown ids, double ends and stale generations; bumps last access, not the TTL', async () => {
  const h = harness({ drainTimeoutMs: 20 });
  await ready(h, 'v1', 40);
  h.cache.endFetch('never-begun');
  h.cache.beginFetch(key('v1'), 't1');
  h.clock += 300;
  h.cache.endFetch('t1', 'done');
  const e = h.cache.get(key('v1'))!;
  assert.equal(e.activeFetches, 0);
  assert.equal(e.lastAccessAt, T0 + 300);
  assert.equal(e.expiresAt, T0 + TTL, 'ending a fetch does not refresh the TTL');
  assert.equal(h.events.find((x) => x.name === 'fetch_end')?.detail?.reason, 'done');
  h.cache.endFetch('t1');
  assert.equal(h.cache.get(key('v1'))?.activeFetches, 0);
  assert.equal(h.events.filter((x) => x.name === 'fetch_end').length, 1);
  // A fetch on generation 1 that outlives its entry does not end a fetch of generation 2.
  h.cache.beginFetch(key('v1'), 'old');
  await h.cache.retire(key('v1'), 'drain'); // freed after the drain timeout
  const g2 = await ready(h, 'v1', 40);
  assert.ok(g2.generation > e.generation);
  h.cache.beginFetch(key('v1'), 'new');
  h.cache.endFetch('old');
  assert.equal(h.cache.get(key('v1'))?.activeFetches, 1);
  h.cache.endFetch('new');
  assert.equal(h.cache.get(key('v1'))?.activeFetches, 0);
});

test('TTL: get() and stats() never refresh it; sweep retires expired idle entries; an active expired entry waits', async () => {
  const h = harness();
  await ready(h, 'a', 10);
  await ready(h, 'b', 10);
  h.clock = T0 + TTL - 1;
  h.cache.get(key('a'));
  h.cache.stats();
  assert.equal(h.cache.get(key('a'))?.expiresAt, T0 + TTL);
  await h.cache.sweep();
  assert.equal(h.cache.stats().entries.ready, 2, 'nothing expired yet');
  h.cache.beginFetch(key('b'), 'tb'); // b refreshed to T0+2*TTL-1 and active
  h.clock = T0 + 2 * TTL;
  await h.cache.sweep();
  assert.equal(h.cache.get(key('a')), undefined);
  assert.equal(h.cache.get(key('b'))?.state, 'ready', 'expired but active: waits');
  assert.deepEqual(
    h.events.filter((e) => e.name === 'retire').map((e) => [e.entry.viewId, e.detail?.reason]),
    [['a', 'ttl_expired']],
  );
  h.cache.endFetch('tb');
  await h.cache.sweep();
  assert.equal(h.cache.get(key('b')), undefined, 'idle and still expired at the next sweep');
  assert.deepEqual(h.cache.stats().entries, { pending: 0, ready: 0, draining: 0 });
});

test('ordered retirement while a fetch is active: withdraw, refuse, wait for endFetch, free, unregister, remove', async () => {
  const h = harness();
  await ready(h, 'v1', 40);
  const fetch = h.cache.beginFetch(key('v1'), 't1');
  let settled = false;
  const retired = h.cache.retire(key('v1'), 'drain').then(() => (settled = true));
  const draining = h.cache.get(key('v1'))!;
  assert.equal(draining.state, 'draining');
  assert.equal(draining.acceptingFetches, false);
  assert.throws(() => h.cache.beginFetch(key('v1'), 't2'), hasReason('drain_attach_closed'));
  await until(() => h.hooks.some((x) => x.startsWith('withdraw')));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'waits for the active fetch');
  assert.deepEqual(h.cache.stats().bytes.draining, 40);
  assert.deepEqual(h.hooks, ['publish:v1', 'withdraw:v1:drain:draining:1']);
  h.cache.endFetch('t1');
  await retired;
  assert.deepEqual(h.hooks, ['publish:v1', 'withdraw:v1:drain:draining:1', 'unregister:v1:drain:0']);
  assert.equal(h.cache.get(key('v1')), undefined);
  assert.deepEqual(h.cache.stats().bytes, { pending: 0, ready: 0, draining: 0 });
  assert.deepEqual(
    h.names().filter((n) => /drain|retire|fetch_end/.test(n)),
    ['drain_start:v1', 'fetch_end:v1', 'drain_complete:v1', 'retire:v1'],
  );
  assert.deepEqual(Buffer.concat(fetch.segments), Buffer.alloc(40, 1), "the fetch's snapshot keeps its bytes");
  for (const step of ['drain_start', 'drain_complete', 'retire']) {
    const line = h.logs.find((l) => l.fields.event === step)!;
    assert.equal(line.level, 'info');
    assert.deepEqual(
      [line.fields.artifactId, line.fields.viewId, line.fields.device, line.fields.generation],
      ['art1', 'v1', 'cpu', fetch.generation],
    );
  }
});

test('ordered retirement: a second retire joins the one in progress; fetches that never end are freed after the bound, with a warning', async () => {
  const h = harness({ drainTimeoutMs: 30 });
  await ready(h, 'v1', 40);
  const fetch = h.cache.beginFetch(key('v1'), 'stuck');
  const first = h.cache.retire(key('v1'), 'drain');
  const second = h.cache.retire(key('v1'), 'shutdown');
  assert.equal(first, second);
  await first;
  assert.equal(h.hooks.filter((x) => x.startsWith('withdraw')).length, 1);
  assert.equal(h.cache.get(key('v1')), undefined);
  const warn = h.logs.find((l) => l.level === 'warn' && /drain timed out/.test(l.message))!;
  assert.equal(warn.fields.activeFetches, 1);
  assert.equal(h.events.find((e) => e.name === 'drain_complete')?.detail?.drained, false);
  assert.deepEqual(Buffer.concat(fetch.segments), Buffer.alloc(40, 1), 'the sender still holds its Buffers');
  h.cache.endFetch('stuck'); // late end: a no-op
  await h.cache.retire(key('v1'), 'drain'); // nothing left: a no-op
});

test('ordered retirement: hook failures and timeouts are logged, never fatal', async () => {
  const h = harness({
    drainTimeoutMs: 30,
    publish: () => Promise.reject(new Error('catalog down')),
    withdraw: () => {
      throw new Error('sync withdraw');
    },
    unregister: () => new Promise<void>(() => undefined), // never settles
  });
  const e = await ready(h, 'v1', 40);
  assert.equal(e.state, 'ready');
  await h.cache.retire(key('v1'), 'drain');
  assert.equal(h.cache.get(key('v1')), undefined);
  const warnings = h.logs.filter((l) => l.level === 'warn').map((l) => l.fields.hook);
  assert.deepEqual(warnings, ['publish', 'withdraw', 'unregister']);
});

test('retire of a pending entry: joined prepares are refused; its bytes count until the build settles', async () => {
  const h = harness();
  const all = [1, 2].map(() => h.cache.prepare(key('v1'), 40, far()));
  await until(() => h.builds.length === 1);
  let settled = false;
  const retired = h.cache.retire(key('v1'), 'drain').then(() => (settled = true));
  for (const p of all) await assert.rejects(p, hasReason('drain_attach_closed'));
  assert.deepEqual(h.cache.stats().bytes, { pending: 0, ready: 0, draining: 40 });
  await assert.rejects(h.cache.prepare(key('v1'), 40, far()), hasReason('drain_attach_closed'));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'waits for the build writing into the bytes');
  h.finish(0);
  await retired;
  assert.equal(h.cache.get(key('v1')), undefined);
  assert.deepEqual(h.hooks, [], 'never published, so nothing to withdraw or unregister');
  assert.deepEqual(h.cache.stats().bytes, { pending: 0, ready: 0, draining: 0 });
});

test('close: retires every entry (shutdown), refuses pending and later prepares with TC_ERR_SHUTTING_DOWN', async () => {
  const h = harness();
  await ready(h, 'a', 10);
  const pending = h.cache.prepare(key('b'), 10, far());
  await until(() => h.builds.length === 2);
  const closed = h.cache.close();
  assert.equal(h.cache.close(), closed);
  await assert.rejects(pending, { code: 'TC_ERR_SHUTTING_DOWN' });
  await assert.rejects(h.cache.prepare(key('c'), 10, far()), { code: 'TC_ERR_SHUTTING_DOWN' });
  h.finish(1);
  await closed;
  assert.deepEqual(h.cache.stats().entries, { pending: 0, ready: 0, draining: 0 });
  assert.deepEqual(
    h.events
      .filter((e) => e.name === 'retire')
      .map((e) => `${e.entry.viewId}:${String(e.detail?.reason)}`)
      .sort(),
    ['a:shutdown', 'b:shutdown'],
  );
  assert.ok(h.hooks.includes('withdraw:a:shutdown:draining:1') && h.hooks.includes('unregister:a:shutdown:0'));
  await h.cache.sweep(); // no-op after close
  // With the default sweep timer: close clears it (the test process would otherwise still exit: it is unref'd).
  const timed = new ExportCache({ budgetBytes: 1, ttlMs: 10, log: recordingLogger([]), build: () => Promise.resolve([]) });
  await timed.close();
});

test('sweep timer: retires expired entries on its own', async () => {
  const lines: LogLine[] = [];
  let now = T0;
  const cache = new ExportCache({
    budgetBytes: 10,
    ttlMs: 1,
    sweepIntervalMs: 5,
    log: recordingLogger(lines),
    now: () => now,
    build: (_k, bytes) => Promise.resolve([Buffer.alloc(bytes)]),
  });
  await cache.prepare(key('v1'), 4, far());
  now += 2;
  await until(() => cache.get(key('v1')) === undefined, 'the timer sweep');
  assert.ok(lines.some((l) => l.fields.event === 'retire' && l.fields.reason === 'ttl_expired'));
  await cache.close();
});

test('options and arguments are checked', async () => {
  const base = { ttlMs: 10, log: recordingLogger([]), build: () => Promise.resolve([]), sweepIntervalMs: 0 };
  assert.throws(() => new ExportCache({ ...base, budgetBytes: -1 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => new ExportCache({ ...base, budgetBytes: 1.5 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => new ExportCache({ ...base, budgetBytes: 1, ttlMs: 0 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => new ExportCache({ ...base, budgetBytes: 1, drainTimeoutMs: -1 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  const cache = new ExportCache({ ...base, budgetBytes: 1 });
  await assert.rejects(cache.prepare(key('v'), -1, far()), { code: 'TC_ERR_INVALID_ARGUMENT' });
  await assert.rejects(cache.prepare({ artifactId: '', viewId: 'v', device: 'cpu' }, 1, far()), { code: 'TC_ERR_INVALID_ARGUMENT' });
});

test('pickExportVictims: expired by expiry, then by last access; undefined (not a partial list) when too little is idle', () => {
  const rec = (viewId: string, bytes: number, state: string, activeFetches: number, lastAccessAt: number, expiresAt: number) =>
    ({ viewId, bytes, state, activeFetches, lastAccessAt, expiresAt, generation: 0 }) as never;
  const records = [
    rec('live-old', 10, 'ready', 0, 5, 500),
    rec('expired-late', 10, 'ready', 0, 1, 90),
    rec('expired-early', 10, 'ready', 0, 50, 80),
    rec('live-new', 10, 'ready', 0, 9, 500),
    rec('active', 50, 'ready', 1, 0, 10),
    rec('pending', 50, 'pending', 0, 0, 10),
    rec('draining', 50, 'draining', 0, 0, 10),
  ];
  const order = (need: number) => pickExportVictims(records, need, 100)?.map((r) => (r as { viewId: string }).viewId);
  assert.deepEqual(order(0), []);
  assert.deepEqual(order(15), ['expired-early', 'expired-late']);
  assert.deepEqual(order(40), ['expired-early', 'expired-late', 'live-old', 'live-new']);
  assert.equal(order(41), undefined);
});
