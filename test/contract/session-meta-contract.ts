// The behaviour every SessionMetaStore must have (docs/sessions.md "Metadata stores and consistency"). Each
// backend's test file calls runSessionMetaContract with a factory of fresh, empty targets.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { geometryHash, type SessionGeometry } from '../../src/sessions/geometry.js';
import type { SessionMetaStore } from '../../src/sessions/meta/session-meta-store.js';
import type { SessionLease, SessionRecord } from '../../src/sessions/session-types.js';
import { raceAppends, raceEntry } from './session-meta-race.js';

/** A fresh, empty set of sessions that one or more store instances can be opened on. */
export interface SessionMetaTarget {
  /** Opens an instance on the target's sessions (memory: the same instance every time). */
  open(): Promise<SessionMetaStore>;
  /** The URL other processes open; undefined when the store cannot be shared between processes (memory). */
  readonly url?: string;
}

/** Makes a fresh target for test `t`, or resolves undefined after skipping `t` (a service is missing). */
export type OpenSessionMetaTarget = (t: TestContext) => Promise<SessionMetaTarget | undefined>;

const RACE_CHANGES = 200;
const EXPIRY_DEADLINE_MS = 30_000;
const execNode = promisify(execFile);

const geometry: SessionGeometry = { modelId: 'llama-test', layers: 2, kvHeads: 2, headDim: 4, dtype: 'F16', tokensPerPage: 16 };
const hash = geometryHash(geometry);

const code = (c: string) => (e: unknown) => (e as { code?: unknown }).code === c;
const details = (e: unknown): Record<string, unknown> => (e as { details: Record<string, unknown> }).details;

/** Awaits `fn` and returns what it threw (fails when it did not throw). */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

/** Polls until `owner` can acquire `id` (the other lease expired by the store's clock). */
async function acquireAfterExpiry(store: SessionMetaStore, id: string, owner: string, ttlMs: number): Promise<SessionLease> {
  const deadline = Date.now() + EXPIRY_DEADLINE_MS;
  for (;;) {
    try {
      return await store.acquire(id, owner, ttlMs);
    } catch (error) {
      if (!code('TC_ERR_CONFLICT')(error) || Date.now() > deadline) throw error;
      await sleep(10);
    }
  }
}

/** Registers the contract tests for one backend (the process race when its targets have a URL: `processes`). */
export function runSessionMetaContract(name: string, openTarget: OpenSessionMetaTarget, options: { processes?: boolean } = {}): void {
  const withStore = (title: string, fn: (s: SessionMetaStore, target: SessionMetaTarget) => Promise<void>): void => {
    test(`session meta contract (${name}): ${title}`, async (t) => {
      const target = await openTarget(t);
      if (target === undefined) return;
      const opened: SessionMetaStore[] = [];
      const tracked: SessionMetaTarget = {
        ...(target.url === undefined ? {} : { url: target.url }),
        open: async () => {
          const s = await target.open();
          opened.push(s);
          return s;
        },
      };
      try {
        await fn(await tracked.open(), tracked);
      } finally {
        for (const s of opened) await s.close();
      }
    });
  };

  withStore('create, get and a duplicate create', async (s) => {
    const created = await s.create('chat-1', geometry, hash);
    assert.deepEqual(
      { ...created, createdAtMs: 0, updatedAtMs: 0 },
      {
        sessionId: 'chat-1',
        geometry: { ...geometry, kvFactor: 2 },
        geometryHash: hash,
        tokens: 0,
        entries: [],
        version: 0,
        fence: 0,
        lease: null,
        createdAtMs: 0,
        updatedAtMs: 0,
      },
    );
    assert.ok(created.createdAtMs > 1_600_000_000_000);
    assert.deepEqual(await s.get('chat-1'), created);
    assert.equal(await s.get('chat-2'), undefined);
    const dup = await rejection(() => s.create('chat-1', geometry, hash));
    assert.ok(code('TC_ERR_CONFLICT')(dup));
    await assert.rejects(s.create('bad id!', geometry, hash), code('TC_ERR_INVALID_ARGUMENT'));
    await assert.rejects(s.create('chat-3', geometry, 'f'.repeat(32)), code('TC_ERR_INVALID_ARGUMENT'));
    await assert.rejects(s.create('chat-3', { ...geometry, layers: 0 }, hash), code('TC_ERR_INVALID_ARGUMENT'));
    assert.equal(await s.get('chat-3'), undefined);
  });

  withStore('list pages in id order', async (s) => {
    const ids = Array.from({ length: 25 }, (_, i) => `s${String((i * 7) % 25).padStart(2, '0')}`);
    for (const id of ids) await s.create(id, geometry, hash);
    const sorted = [...ids].sort();
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await s.list(after === undefined ? { limit: 10 } : { after, limit: 10 });
      if (page.length === 0) break;
      assert.ok(page.length <= 10);
      seen.push(...page.map((r) => r.sessionId));
      after = page.at(-1)!.sessionId;
    }
    assert.deepEqual(seen, sorted);
    assert.deepEqual(
      (await s.list()).map((r) => r.sessionId),
      sorted,
    );
    assert.deepEqual(
      (await s.list({ after: 's19' })).map((r) => r.sessionId),
      sorted.filter((id) => id > 's19'),
    );
    await assert.rejects(s.list({ limit: 0 }), code('TC_ERR_INVALID_ARGUMENT'));
  });

  withStore('acquire, renew, release; another owner conflicts while the lease is live', async (s) => {
    await s.create('c', geometry, hash);
    const a = await s.acquire('c', 'owner-a', 60_000);
    assert.deepEqual({ ...a, expiresAtMs: 0 }, { sessionId: 'c', owner: 'owner-a', fence: 1, expiresAtMs: 0 });
    assert.deepEqual((await s.get('c'))?.lease, a);
    const held = await rejection(() => s.acquire('c', 'owner-b', 60_000));
    assert.ok(code('TC_ERR_CONFLICT')(held));
    assert.equal(details(held).holder, 'owner-a');
    assert.equal(details(held).expiresAtMs, a.expiresAtMs);
    const renewed = await s.renew(a, 120_000);
    assert.equal(renewed.fence, a.fence);
    assert.ok(renewed.expiresAtMs >= a.expiresAtMs);
    await s.release(renewed);
    assert.equal((await s.get('c'))?.lease, null);
    await assert.rejects(s.renew(renewed, 1000), code('TC_ERR_CONFLICT'));
    const b = await s.acquire('c', 'owner-b', 60_000);
    assert.equal(b.fence, 2);
    await s.release(a); // not live: nothing happens
    assert.deepEqual((await s.get('c'))?.lease, b);
    await assert.rejects(s.acquire('nope', 'owner-a', 1000), code('TC_ERR_NOT_FOUND'));
    await assert.rejects(s.acquire('c', 'owner-a', 0), code('TC_ERR_INVALID_ARGUMENT'));
    await assert.rejects(s.acquire('c', '', 1000), code('TC_ERR_INVALID_ARGUMENT'));
  });

  withStore('acquire is re-entrant with a fresh fence; the replaced lease is stale', async (s) => {
    await s.create('c', geometry, hash);
    const first = await s.acquire('c', 'owner-a', 60_000);
    const second = await s.acquire('c', 'owner-a', 60_000);
    assert.equal(second.fence, first.fence + 1);
    assert.equal((await s.get('c'))?.fence, second.fence);
    await assert.rejects(s.update(first, 0, { entries: [raceEntry(0, 'x')], tokens: 1 }), code('TC_ERR_CONFLICT'));
    const updated = await s.update(second, 0, { entries: [raceEntry(0, 'y')], tokens: 1 });
    assert.equal(updated.version, 1);
  });

  withStore('fences grow by one per acquire and never go back, also across an expired lease', async (s) => {
    await s.create('c', geometry, hash);
    const fences: number[] = [];
    const a = await s.acquire('c', 'owner-a', 50);
    fences.push(a.fence);
    const b = await acquireAfterExpiry(s, 'c', 'owner-b', 50);
    fences.push(b.fence);
    const a2 = await acquireAfterExpiry(s, 'c', 'owner-a', 60_000);
    fences.push(a2.fence);
    await s.release(a2);
    fences.push((await s.acquire('c', 'owner-b', 60_000)).fence);
    assert.deepEqual(fences, [1, 2, 3, 4]);
    assert.equal((await s.get('c'))?.fence, 4);
  });

  withStore('update is a compare-and-swap on the version under the current lease', async (s) => {
    await s.create('c', geometry, hash);
    const lease = await s.acquire('c', 'owner-a', 60_000);
    const entries = [
      { ...raceEntry(0, 'sessions/c/0-3-a'), tokenLength: 3, bytes: 24, hot: { holder: 'owner-a' } },
      raceEntry(3, 'sessions/c/3-1-b'),
    ];
    const r1 = await s.update(lease, 0, { entries, tokens: 4 });
    assert.equal(r1.version, 1);
    assert.equal(r1.tokens, 4);
    assert.deepEqual(r1.entries, entries);
    assert.deepEqual(await s.get('c'), r1);
    const stale = await rejection(() => s.update(lease, 0, { entries: [], tokens: 0 }));
    assert.ok(code('TC_ERR_CONFLICT')(stale));
    assert.equal(details(stale).reason, 'version');
    for (const bad of [
      { entries: [raceEntry(1, 'gap')], tokens: 2 },
      { entries: [raceEntry(0, 'x')], tokens: 5 },
      { entries: [{ ...raceEntry(0, 'x'), tokenLength: 0 }], tokens: 0 },
    ]) {
      await assert.rejects(s.update(lease, 1, bad), code('TC_ERR_INVALID_ARGUMENT'));
    }
    assert.deepEqual(await s.get('c'), r1);
    const r2 = await s.update(lease, 1, { entries: [], tokens: 0 });
    assert.deepEqual([r2.version, r2.tokens, r2.entries], [2, 0, []]);
    await s.release(lease);
    await assert.rejects(s.update(lease, 2, { entries: [], tokens: 0 }), code('TC_ERR_CONFLICT'));
    assert.equal((await s.get('c'))?.version, 2);
  });

  withStore('a stale writer (its lease expired and was taken over) conflicts and changes nothing', async (s, target) => {
    const other = await target.open();
    await s.create('c', geometry, hash);
    const old = await s.acquire('c', 'writer-a', 50);
    const before = await s.get('c');
    const taken = await acquireAfterExpiry(other, 'c', 'writer-b', 60_000);
    assert.equal(taken.fence, old.fence + 1);
    const stale = await rejection(() => s.update(old, before!.version, { entries: [raceEntry(0, 'late')], tokens: 1 }));
    assert.ok(code('TC_ERR_CONFLICT')(stale));
    assert.equal(details(stale).reason, 'stale_lease');
    await assert.rejects(s.renew(old, 60_000), code('TC_ERR_CONFLICT'));
    await s.release(old);
    const after = await other.get('c');
    assert.deepEqual(after?.entries, []);
    assert.equal(after?.version, before!.version);
    assert.deepEqual(after?.lease, taken);
    await assert.rejects(s.remove('c', old), code('TC_ERR_CONFLICT'));
    assert.notEqual(await s.get('c'), undefined);
  });

  withStore('remove with and without a lease', async (s) => {
    for (const id of ['a', 'b', 'c']) await s.create(id, geometry, hash);
    const removedA = await s.remove('a');
    assert.equal(removedA?.sessionId, 'a');
    assert.equal(await s.get('a'), undefined);
    assert.equal(await s.remove('a'), undefined);
    const lease = await s.acquire('b', 'owner-a', 60_000);
    const held = await rejection(() => s.remove('b'));
    assert.ok(code('TC_ERR_CONFLICT')(held));
    assert.equal(details(held).holder, 'owner-a');
    await s.update(lease, 0, { entries: [raceEntry(0, 'kept')], tokens: 1 });
    const removedB = await s.remove('b', lease);
    assert.deepEqual(removedB?.entries, [raceEntry(0, 'kept')]);
    assert.equal(await s.get('b'), undefined);
    await assert.rejects(s.update(lease, 1, { entries: [], tokens: 0 }), code('TC_ERR_NOT_FOUND'));
    const c = await s.acquire('c', 'owner-a', 50);
    await s.release(c);
    await assert.rejects(s.remove('c', c), code('TC_ERR_CONFLICT'));
    assert.equal((await s.remove('c'))?.sessionId, 'c');
    assert.deepEqual(await s.list(), []);
    await s.create('a', geometry, hash);
    assert.equal((await s.get('a'))?.version, 0);
  });

  withStore(`two instances race acquire+update on one session ${RACE_CHANGES} times: nothing lost`, async (s, target) => {
    await s.create('race', geometry, hash);
    const other = await target.open();
    const results = await Promise.all([raceAppends(s, 'race', 'inst-a', RACE_CHANGES), raceAppends(other, 'race', 'inst-b', RACE_CHANGES)]);
    checkRace(await s.get('race'), results);
  });

  if (options.processes !== true) return;
  test(`session meta contract (${name}): two processes race acquire+update on one session ${RACE_CHANGES} times`, async (t) => {
    const target = await openTarget(t);
    if (target === undefined) return;
    assert.ok(target.url !== undefined, 'a target of a store shared between processes has a URL');
    const s = await target.open();
    try {
      await s.create('race', geometry, hash);
      const child = fileURLToPath(new URL('./session-meta-race-child.js', import.meta.url));
      const results = await Promise.all(
        ['proc-a', 'proc-b'].map(async (owner) => {
          const { stdout } = await execNode(process.execPath, [child, target.url!, 'race', owner, String(RACE_CHANGES)], {
            maxBuffer: 16 << 20,
          });
          return JSON.parse(stdout) as string[];
        }),
      );
      checkRace(await s.get('race'), results);
    } finally {
      await s.close();
    }
  });
}

/** Every applied change is in the record once, in each contender's order; versions and tokens count them. */
function checkRace(record: SessionRecord | undefined, results: readonly string[][]): void {
  assert.ok(record !== undefined);
  const total = results.reduce((n, r) => n + r.length, 0);
  for (const r of results) assert.equal(r.length, RACE_CHANGES);
  assert.equal(record.version, total);
  assert.equal(record.tokens, total);
  assert.equal(record.entries.length, total);
  record.entries.forEach((e, i) => assert.equal(e.tokenOffset, i));
  const uris = record.entries.map((e) => e.uri);
  assert.equal(new Set(uris).size, total);
  for (const r of results) {
    assert.deepEqual(
      uris.filter((u) => r.includes(u)),
      r,
    );
  }
  assert.equal(record.lease, null, 'every contender released its last lease');
}
