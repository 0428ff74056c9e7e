// The behaviour every HandshakeStore backend must have. Each backend's test file calls
// runHandshakeStoreContract with a factory giving, per test, a fresh namespace from which several store
// instances can be opened (two listeners on one Redis or PostgreSQL; the memory store gives its one instance).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { isTensorcastError } from '../../src/core/errors.js';
import type {
  HandshakeStore,
  HandshakeStoreOptions,
  PublishLimits,
  PublishRecord,
  RankLookup,
} from '../../src/handshake/store/handshake-store.js';

/** Opens one more store on the test's namespace. */
export type OpenStore = (options?: HandshakeStoreOptions) => Promise<HandshakeStore>;
/** A fresh, empty namespace for test `t`, or undefined after skipping `t` (a service is missing). */
export type FreshNamespace = (t: TestContext) => Promise<OpenStore | undefined>;

const LIMITS: PublishLimits = { ttlMs: 60_000, maxEngineBytes: 64 << 20 };
/** How long a poll waits for expiry before failing: generous, for a loaded machine. */
const POLL_DEADLINE_MS = 30_000;

const record = (over: Partial<PublishRecord> = {}): PublishRecord => ({
  engineId: 'prefill-0',
  tpRank: 0,
  dpRank: 0,
  incarnation: 'inc-1',
  compatibilityHash: 'hash-a',
  tpSize: 4,
  payload: randomBytes(1024),
  ...over,
});

const codeOf = (code: string) => (error: unknown) => {
  assert.ok(isTensorcastError(error), `expected a tensorcast error, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return true;
};

/** Polls `check` until it returns a value (not undefined), or fails after POLL_DEADLINE_MS. */
async function pollFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const liveRank = (lookup: RankLookup) => {
  assert.equal(lookup.state, 'live');
  return lookup.state === 'live' ? lookup.rank : assert.fail('not live');
};

/** Registers the contract tests for one backend. */
export function runHandshakeStoreContract(name: string, fresh: FreshNamespace): void {
  const withStores = (title: string, fn: (open: OpenStore) => Promise<void>): void => {
    test(`handshake store contract (${name}): ${title}`, async (t) => {
      const namespace = await fresh(t);
      if (namespace === undefined) return;
      const opened: HandshakeStore[] = [];
      const open: OpenStore = async (options) => {
        const store = await namespace(options);
        opened.push(store);
        return store;
      };
      try {
        await fn(open);
      } finally {
        for (const store of opened) await store.close();
      }
    });
  };

  withStores('a published rank reads back byte-identical with its facts; unknown engines and ranks are missing', async (open) => {
    const store = await open();
    const payload = randomBytes(64 * 1024);
    const published = await store.publish(record({ tpRank: 2, dpRank: 1, payload }), LIMITS);
    assert.equal(published.replacedIncarnation, null);
    const rank = liveRank(await store.rank('prefill-0', 2, 1));
    assert.deepEqual(Buffer.from(rank.payload), payload);
    assert.equal(rank.incarnation, 'inc-1');
    assert.equal(rank.compatibilityHash, 'hash-a');
    assert.equal(rank.tpSize, 4);
    assert.equal(rank.expiresAtMs, published.expiresAtMs);
    assert.equal(rank.expiresAtMs - rank.publishedAtMs, LIMITS.ttlMs);
    assert.deepEqual(await store.head('prefill-0'), { incarnation: 'inc-1', compatibilityHash: 'hash-a' });
    assert.deepEqual(await store.engine('prefill-0'), {
      engineId: 'prefill-0',
      incarnation: 'inc-1',
      compatibilityHash: 'hash-a',
      tpSize: 4,
      ranks: [{ tpRank: 2, dpRank: 1, bytes: payload.byteLength, publishedAtMs: rank.publishedAtMs, expiresAtMs: rank.expiresAtMs }],
    });
    assert.deepEqual(await store.rank('prefill-0', 1, 2), { state: 'missing' });
    assert.deepEqual(await store.rank('nobody', 0, 0), { state: 'missing' });
    assert.equal(await store.head('nobody'), undefined);
    assert.equal(await store.engine('nobody'), undefined);
    // Republishing a rank replaces its payload.
    const again = randomBytes(300);
    await store.publish(record({ tpRank: 2, dpRank: 1, payload: again }), LIMITS);
    assert.deepEqual(Buffer.from(liveRank(await store.rank('prefill-0', 2, 1)).payload), again);
  });

  withStores('binary payloads keep every byte value (and an empty payload stays empty)', async (open) => {
    const store = await open();
    const every = Buffer.alloc(256 * 4);
    for (let i = 0; i < every.length; i++) every[i] = i % 256;
    // Invalid UTF-8, NULs, a lone continuation byte at the end.
    const tricky = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x00, 0x80]);
    const cases = [every, tricky, Buffer.alloc(0), Buffer.from([0])];
    for (const [i, payload] of cases.entries()) await store.publish(record({ tpRank: i, payload }), LIMITS);
    // A payload given as a view into a larger buffer is stored as the view's bytes only.
    const backing = randomBytes(100);
    await store.publish(record({ tpRank: cases.length, payload: backing.subarray(10, 20) }), LIMITS);
    for (const [i, payload] of cases.entries()) {
      assert.deepEqual(Buffer.from(liveRank(await store.rank('prefill-0', i, 0)).payload), payload, `payload ${i}`);
    }
    assert.deepEqual(Buffer.from(liveRank(await store.rank('prefill-0', cases.length, 0)).payload), backing.subarray(10, 20));
  });

  withStores('a new incarnation drops every rank of the old one, in one step', async (open) => {
    const store = await open();
    for (const [tp, dp] of [
      [0, 0],
      [1, 0],
      [0, 1],
    ] as const) {
      await store.publish(record({ tpRank: tp, dpRank: dp }), LIMITS);
    }
    const restarted = await store.publish(record({ incarnation: 'inc-2', compatibilityHash: 'hash-b', tpSize: 2 }), LIMITS);
    assert.equal(restarted.replacedIncarnation, 'inc-1');
    assert.deepEqual(await store.rank('prefill-0', 1, 0), { state: 'missing' });
    assert.deepEqual(await store.rank('prefill-0', 0, 1), { state: 'missing' });
    assert.equal(liveRank(await store.rank('prefill-0', 0, 0)).incarnation, 'inc-2');
    const summary = await store.engine('prefill-0');
    assert.equal(summary?.incarnation, 'inc-2');
    assert.equal(summary?.compatibilityHash, 'hash-b');
    assert.equal(summary?.tpSize, 2);
    assert.deepEqual(
      summary?.ranks.map((r) => [r.tpRank, r.dpRank]),
      [[0, 0]],
    );
    // More ranks of the new incarnation replace nothing.
    assert.equal(
      (await store.publish(record({ tpRank: 1, incarnation: 'inc-2', compatibilityHash: 'hash-b' }), LIMITS)).replacedIncarnation,
      null,
    );
    assert.equal((await store.engine('prefill-0'))?.ranks.length, 2);
  });

  withStores('the live incarnation with another hash is refused, naming both hashes, and nothing changes', async (open) => {
    const store = await open();
    const payload = randomBytes(64);
    await store.publish(record({ payload }), LIMITS);
    await assert.rejects(store.publish(record({ compatibilityHash: 'hash-x' }), LIMITS), (error: unknown) => {
      codeOf('TC_ERR_INCOMPATIBLE')(error);
      assert.ok(isTensorcastError(error));
      assert.equal(error.details.expected, 'hash-a');
      assert.equal(error.details.actual, 'hash-x');
      return true;
    });
    await assert.rejects(store.publish(record({ tpRank: 3, compatibilityHash: 'hash-x' }), LIMITS), codeOf('TC_ERR_INCOMPATIBLE'));
    assert.deepEqual(Buffer.from(liveRank(await store.rank('prefill-0', 0, 0)).payload), payload);
    assert.deepEqual(await store.rank('prefill-0', 3, 0), { state: 'missing' });
    assert.deepEqual(await store.head('prefill-0'), { incarnation: 'inc-1', compatibilityHash: 'hash-a' });
  });

  withStores("the engine byte cap counts the engine's live payloads; a refused publish writes nothing", async (open) => {
    const store = await open();
    const limits = { ...LIMITS, maxEngineBytes: 100 };
    const first = randomBytes(60);
    await store.publish(record({ payload: first }), limits);
    await assert.rejects(store.publish(record({ tpRank: 1, payload: randomBytes(41) }), limits), (error: unknown) => {
      codeOf('TC_ERR_TOO_LARGE')(error);
      assert.ok(isTensorcastError(error));
      assert.equal(error.details.cap, 100);
      assert.equal(error.details.bytes, 101);
      return true;
    });
    assert.deepEqual(await store.rank('prefill-0', 1, 0), { state: 'missing' });
    await store.publish(record({ tpRank: 1, payload: randomBytes(40) }), limits); // exactly at the cap
    // Replacing a rank counts its new size, not its old one.
    await store.publish(record({ payload: randomBytes(55) }), limits);
    await assert.rejects(store.publish(record({ payload: randomBytes(61) }), limits), codeOf('TC_ERR_TOO_LARGE'));
    // A new incarnation that is too large on its own is refused, and the old incarnation stays.
    await assert.rejects(store.publish(record({ incarnation: 'inc-2', payload: randomBytes(101) }), limits), codeOf('TC_ERR_TOO_LARGE'));
    assert.equal((await store.head('prefill-0'))?.incarnation, 'inc-1');
    assert.equal((await store.engine('prefill-0'))?.ranks.length, 2);
    // The old incarnation's bytes do not count against the new one.
    await store.publish(record({ incarnation: 'inc-2', payload: randomBytes(100) }), limits);
    assert.deepEqual(
      (await store.engine('prefill-0'))?.ranks.map((r) => r.bytes),
      [100],
    );
  });

  withStores('renew extends every live rank of the live incarnation only', async (open) => {
    const store = await open();
    await store.publish(record({ tpRank: 0 }), { ...LIMITS, ttlMs: 10_000 });
    await store.publish(record({ tpRank: 1 }), { ...LIMITS, ttlMs: 10_000 });
    const before = liveRank(await store.rank('prefill-0', 1, 0)).expiresAtMs;
    assert.deepEqual(await store.renew('prefill-0', 'inc-0', 60_000), { renewed: 0, expiresAtMs: 0 });
    assert.deepEqual(await store.renew('nobody', 'inc-1', 60_000), { renewed: 0, expiresAtMs: 0 });
    const renewed = await store.renew('prefill-0', 'inc-1', 60_000);
    assert.equal(renewed.renewed, 2);
    assert.ok(renewed.expiresAtMs >= before + 50_000, `renewed to ${renewed.expiresAtMs}, was ${before}`);
    for (const tp of [0, 1]) assert.equal(liveRank(await store.rank('prefill-0', tp, 0)).expiresAtMs, renewed.expiresAtMs);
    assert.deepEqual(
      (await store.engine('prefill-0'))?.ranks.map((r) => r.expiresAtMs),
      [renewed.expiresAtMs, renewed.expiresAtMs],
    );
    await assert.rejects(store.renew('prefill-0', 'inc-1', 0), codeOf('TC_ERR_INVALID_ARGUMENT'));
  });

  withStores('remove drops the ranks (of one incarnation when named) and counts them', async (open) => {
    const store = await open();
    for (const tp of [0, 1, 2]) await store.publish(record({ tpRank: tp }), LIMITS);
    await store.publish(record({ engineId: 'other' }), LIMITS);
    assert.equal(await store.remove('prefill-0', 'inc-0'), 0);
    assert.equal((await store.engine('prefill-0'))?.ranks.length, 3);
    assert.equal(await store.remove('prefill-0', 'inc-1'), 3);
    assert.deepEqual(await store.rank('prefill-0', 0, 0), { state: 'missing' });
    assert.equal(await store.engine('prefill-0'), undefined);
    assert.deepEqual(
      (await store.engines()).map((e) => e.engineId),
      ['other'],
    );
    assert.equal(await store.remove('prefill-0'), 0);
    assert.equal(await store.remove('other'), 1);
    assert.deepEqual(await store.engines(), []);
    // A removed engine publishes afresh: nothing to replace.
    assert.equal((await store.publish(record({ incarnation: 'inc-9' }), LIMITS)).replacedIncarnation, null);
  });

  withStores('an unrenewed rank expires: reported expired (not live, not listed, not renewable) during the grace', async (open) => {
    const store = await open({ expiredGraceMs: 10 * 60_000 });
    const published = await store.publish(record({ tpRank: 1 }), { ...LIMITS, ttlMs: 250 });
    const expired = await pollFor('the rank to expire', async () => {
      const lookup = await store.rank('prefill-0', 1, 0);
      return lookup.state === 'live' ? undefined : lookup;
    });
    assert.deepEqual(expired, { state: 'expired', incarnation: 'inc-1', expiredAtMs: published.expiresAtMs });
    assert.equal(await store.head('prefill-0'), undefined);
    assert.equal(await store.engine('prefill-0'), undefined);
    assert.deepEqual(await store.engines(), []);
    assert.equal((await store.renew('prefill-0', 'inc-1', 60_000)).renewed, 0);
    await store.sweep(); // within the grace: still remembered
    assert.equal((await store.rank('prefill-0', 1, 0)).state, 'expired');
    // The same incarnation with another hash may publish once nothing of it is live; the expired rank goes.
    assert.equal((await store.publish(record({ tpRank: 0, compatibilityHash: 'hash-b' }), LIMITS)).replacedIncarnation, null);
    assert.deepEqual(await store.rank('prefill-0', 1, 0), { state: 'missing' });
    assert.deepEqual(await store.head('prefill-0'), { incarnation: 'inc-1', compatibilityHash: 'hash-b' });
  });

  withStores('an expired rank is forgotten after the grace period (missing, swept from the listing)', async (open) => {
    const store = await open({ expiredGraceMs: 300 });
    await store.publish(record(), { ...LIMITS, ttlMs: 200 });
    await store.publish(record({ engineId: 'stays' }), LIMITS);
    await pollFor('the rank to be forgotten', async () => ((await store.rank('prefill-0', 0, 0)).state === 'missing' ? true : undefined));
    await store.sweep();
    assert.deepEqual(
      (await store.engines()).map((e) => e.engineId),
      ['stays'],
    );
    assert.equal(await store.remove('prefill-0'), 0);
    assert.equal((await store.publish(record({ incarnation: 'inc-2' }), LIMITS)).replacedIncarnation, null);
  });

  withStores('engines() lists every engine with live ranks, ordered by engine id (byte order)', async (open) => {
    const store = await open();
    const ids = ['b', 'a.x', 'A', 'a', 'a:1', '0', 'z-', 'a@b', 'a+b', 'B_'];
    for (const id of ids) await store.publish(record({ engineId: id, tpSize: 2 }), LIMITS);
    const listed = await store.engines();
    assert.deepEqual(
      listed.map((e) => e.engineId),
      [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
    );
    for (const summary of listed) {
      assert.equal(summary.tpSize, 2);
      assert.equal(summary.ranks.length, 1);
    }
  });

  withStores('limits are checked: a ttl below 1 ms or a rank out of range is an invalid argument', async (open) => {
    const store = await open();
    await assert.rejects(store.publish(record(), { ...LIMITS, ttlMs: 0 }), codeOf('TC_ERR_INVALID_ARGUMENT'));
    await assert.rejects(store.publish(record({ tpRank: 4096 }), LIMITS), codeOf('TC_ERR_INVALID_ARGUMENT'));
    await assert.rejects(store.publish(record({ dpRank: -1 }), LIMITS), codeOf('TC_ERR_INVALID_ARGUMENT'));
    assert.deepEqual(await store.engines(), []);
  });

  withStores(
    'two listeners publishing one engine concurrently end consistent: every rank of the last incarnation, none older',
    async (open) => {
      const stores = [await open(), await open()] as const;
      const RANKS = 8;
      const ROUNDS = 12;
      for (let round = 1; round <= ROUNDS; round++) {
        const incarnation = `inc-${round}`;
        const results = await Promise.all(
          Array.from({ length: RANKS }, (_, tp) =>
            stores[tp % 2]!.publish(record({ tpRank: tp % 4, dpRank: Math.floor(tp / 4), incarnation, tpSize: 4 }), LIMITS),
          ),
        );
        // Exactly one publish of the round replaced the previous incarnation: the others saw the new one.
        const replaced = results.map((r) => r.replacedIncarnation).filter((r) => r !== null);
        assert.deepEqual(replaced, round === 1 ? [] : [`inc-${round - 1}`], `round ${round}`);
        for (const store of stores) {
          const summary = await store.engine('prefill-0');
          assert.equal(summary?.incarnation, incarnation);
          assert.equal(summary?.ranks.length, RANKS, `round ${round}: ${JSON.stringify(summary?.ranks)}`);
        }
      }
    },
  );

  withStores('two listeners racing one new incarnation with two hashes: one hash wins every rank, the other is refused', async (open) => {
    const stores = [await open(), await open()] as const;
    for (let round = 1; round <= 6; round++) {
      const incarnation = `race-${round}`;
      const attempts = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => {
          const hash = i % 2 === 0 ? 'hash-even' : 'hash-odd';
          return stores[i % 2]!.publish(record({ tpRank: Math.floor(i / 2), incarnation, compatibilityHash: hash }), LIMITS).then(
            () => hash,
          );
        }),
      );
      const winners = new Set(attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : [])));
      assert.equal(winners.size, 1, `round ${round}: ${JSON.stringify(attempts)}`);
      const [winner] = [...winners];
      for (const a of attempts) if (a.status === 'rejected') codeOf('TC_ERR_INCOMPATIBLE')(a.reason);
      const summary = await stores[0].engine('prefill-0');
      assert.equal(summary?.compatibilityHash, winner);
      assert.equal(summary?.incarnation, incarnation);
      assert.equal(summary?.ranks.length, attempts.filter((a) => a.status === 'fulfilled').length);
    }
  });
}
