// One contender of the session-metadata race (session-meta-contract.ts): appends `count` one-token entries to
// one session, each under its own lease (acquire, read, update, release), retrying when another contender holds
// the lease. Returns the uris it applied, in order. An update that conflicts under a lease it holds is a bug of
// the store's exclusion and ends the race with that error.

import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionMetaStore } from '../../src/sessions/meta/session-meta-store.js';
import type { SessionEntry, SessionLease } from '../../src/sessions/session-types.js';

/** Most lease attempts per applied change before the contender gives up (it is starved). */
const MAX_ATTEMPTS_PER_CHANGE = 10_000;

/** The one-token entry a contender appends (its uri names the contender and the change). */
export function raceEntry(tokenOffset: number, uri: string): SessionEntry {
  return { tokenOffset, tokenLength: 1, connector: 'file:///race', uri, bytes: 8, crc32c: tokenOffset % 0xffffffff };
}

/** Runs one contender; resolves with the uris it applied, in order. */
export async function raceAppends(store: SessionMetaStore, sessionId: string, owner: string, count: number): Promise<string[]> {
  const applied: string[] = [];
  let attempts = 0;
  while (applied.length < count) {
    if (++attempts > MAX_ATTEMPTS_PER_CHANGE * count) throw new Error(`${owner}: starved after ${attempts} lease attempts`);
    let lease: SessionLease;
    try {
      lease = await store.acquire(sessionId, owner, 30_000);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'TC_ERR_CONFLICT') throw error;
      await sleep(attempts % 4);
      continue;
    }
    try {
      const record = await store.get(sessionId);
      if (record === undefined) throw new Error(`${owner}: the session vanished`);
      const uri = `${owner}/${applied.length}`;
      await store.update(lease, record.version, { entries: [...record.entries, raceEntry(record.tokens, uri)], tokens: record.tokens + 1 });
      applied.push(uri);
    } finally {
      await store.release(lease);
    }
  }
  return applied;
}
