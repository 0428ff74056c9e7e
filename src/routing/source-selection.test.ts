import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DaemonRecord, ListedReplica } from '../catalog/catalog.js';
import { canonicalSources, isLivePeer, residentSources, type SelectionContext } from './source-selection.js';

const NOW = 1_000_000;
const daemon = (id: string, over: Partial<DaemonRecord> = {}): DaemonRecord => ({
  daemonId: id,
  controlUrl: `http://${id}:1`,
  dataAddress: `${id}:2`,
  advertiseHost: id,
  state: 'up',
  heartbeatAt: NOW - 1000,
  ...over,
});
const replica = (daemonId: string, over: Partial<ListedReplica> = {}): ListedReplica => ({
  artifactId: 'tc1:a',
  viewId: undefined,
  daemonId,
  tier: 'disk',
  bytes: 100,
  state: 'published',
  activeFetches: 0,
  ...over,
});
const ctx = (over: Partial<SelectionContext> = {}): SelectionContext => ({
  selfId: 'me',
  now: NOW,
  daemonTtlMs: 30_000,
  excluded: new Set(),
  ...over,
});
const ids = (c: { daemon: DaemonRecord }[]): string[] => c.map((x) => x.daemon.daemonId);

test('live peers: up, heard from within the TTL, not this daemon, not excluded', () => {
  assert.equal(isLivePeer(daemon('a'), ctx()), true);
  assert.equal(isLivePeer(daemon('me'), ctx()), false);
  assert.equal(isLivePeer(daemon('a', { heartbeatAt: NOW - 30_001 }), ctx()), false);
  assert.equal(isLivePeer(daemon('a', { state: 'draining' }), ctx()), false);
  assert.equal(isLivePeer(daemon('a'), ctx({ excluded: new Set(['a']) })), false);
});

test('canonical sources: daemons storing the artifact, fewest active fetches first, dead and retiring ones left out', () => {
  const daemons = [daemon('a'), daemon('b'), daemon('c', { heartbeatAt: 0 }), daemon('d'), daemon('me')];
  const replicas = [
    replica('a', { activeFetches: 3 }),
    replica('b', { activeFetches: 1 }),
    replica('c'),
    replica('d', { state: 'retiring' }),
    replica('me'),
    replica('a', { viewId: 'v', tier: 'memory' }),
  ];
  assert.deepEqual(ids(canonicalSources(daemons, replicas, ctx())), ['b', 'a']);
});

test('resident sources: a memory replica before an export, the view asked for only, one candidate per daemon', () => {
  const daemons = [daemon('a'), daemon('b'), daemon('c')];
  const replicas = [
    replica('a', { viewId: 'v', tier: 'export' }),
    replica('a', { viewId: 'v', tier: 'memory', activeFetches: 5 }),
    replica('b', { viewId: 'v', tier: 'export' }),
    replica('c', { viewId: 'w', tier: 'memory' }),
    replica('c', { viewId: 'v', tier: 'shm' }),
  ];
  const got = residentSources(daemons, replicas, 'v', ctx());
  assert.deepEqual(ids(got), ['a', 'b']);
  assert.equal(got[0]!.replica.tier, 'memory');
  assert.deepEqual(ids(residentSources(daemons, replicas, 'x', ctx())), []);
});
