// The session metadata contract on the memory store (one instance per test, shared by its "instances"), plus
// what is the memory store's own: its clock is injectable and records handed out cannot change it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { geometryHash, type SessionGeometry } from '../../src/sessions/geometry.js';
import { MemorySessionMetaStore } from '../../src/sessions/meta/memory-session-meta-store.js';
import { openSessionMetaStore } from '../../src/sessions/meta/open-session-meta-store.js';
import { runSessionMetaContract } from './session-meta-contract.js';
import { raceEntry } from './session-meta-race.js';

runSessionMetaContract('memory', async () => {
  const store = await openSessionMetaStore('memory');
  return { open: () => Promise.resolve(store) };
});

const geometry: SessionGeometry = { modelId: 'm', layers: 1, kvHeads: 1, headDim: 8, dtype: 'F32', tokensPerPage: 1 };

test('memory session meta: expiry follows the injected clock; an expired lease nobody took over may still update', async () => {
  let now = 1_000_000;
  const store = new MemorySessionMetaStore({ now: () => now });
  await store.create('c', geometry, geometryHash(geometry));
  const a = await store.acquire('c', 'a', 100);
  assert.equal(a.expiresAtMs, 1_000_100);
  now += 100;
  const updated = await store.update(a, 0, { entries: [raceEntry(0, 'u')], tokens: 1 });
  assert.equal(updated.version, 1);
  assert.equal(updated.updatedAtMs, 1_000_100);
  const b = await store.acquire('c', 'b', 100);
  assert.equal(b.fence, 2);
  await assert.rejects(store.update(a, 1, { entries: [], tokens: 0 }), (e: { code?: string }) => e.code === 'TC_ERR_CONFLICT');
  await store.close();
  await assert.rejects(store.get('c'), (e: { code?: string }) => e.code === 'TC_ERR_SHUTTING_DOWN');
});

test('memory session meta: records handed out are frozen; the caller reusing its entries changes nothing', async () => {
  const store = new MemorySessionMetaStore();
  await store.create('c', geometry, geometryHash(geometry));
  const lease = await store.acquire('c', 'a', 60_000);
  const entries = [{ ...raceEntry(0, 'u') }];
  const record = await store.update(lease, 0, { entries, tokens: 1 });
  (entries[0] as { uri: string }).uri = 'changed';
  assert.equal((await store.get('c'))?.entries[0]?.uri, 'u');
  assert.throws(() => ((record.entries[0] as { uri: string }).uri = 'x'), TypeError);
  await store.close();
});

test('openSessionMetaStore: an unknown scheme is a config error that never shows the password', async () => {
  await assert.rejects(
    openSessionMetaStore('mysql://u:hunter22@db/x'),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_CONFIG' && !e.message.includes('hunter22'),
  );
});
