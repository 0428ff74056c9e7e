import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tcError } from '../../core/errors.js';
import { Namespace } from './namespaces.js';
import { ObjectRoom, type IdleMemory } from './object-room.js';
import type { ObjectTier } from './object-store-api.js';

/** Idle memory of `idle` bytes whose objects cost `extra` bytes above their size in memory. */
function idleMemory(idle: number, extra = 0): IdleMemory & { idle: number } {
  return {
    idle,
    idleBytes() {
      return this.idle;
    },
    evict(bytes: number) {
      this.idle -= Math.min(bytes, this.idle);
    },
    cost: (tier: ObjectTier, size: number) => (tier === 'disk' ? 0 : tier === 'memory' ? size + extra : size),
  };
}

const put = (key: string, size: number, waitForRoom = false) => ({ key, size, waitForRoom, deadline: Date.now() + 60_000 });

test('object room: idle bytes count inside the budget and give way to a put that needs their room', async () => {
  const idle = idleMemory(600);
  const room = new ObjectRoom(1000, Date.now, idle);
  const ns = new Namespace('a');
  assert.equal(await room.reserve(put('a/x', 300), ns, false), 'memory');
  assert.equal(idle.idle, 600, 'no eviction while the put fits beside the idle bytes');
  assert.equal(await room.reserve(put('a/y', 500), ns, false), 'memory');
  assert.equal(idle.idle, 200, 'idle bytes evicted just enough');
  assert.equal(room.memoryUsed, 800);
  await assert.rejects(async () => room.reserve(put('a/z', 300), ns, false), { code: 'TC_ERR_BUDGET' });
  assert.equal(idle.idle, 200, 'nothing evicted for a put that would not fit anyway');
});

test('object room: memory objects charge their cost (buffer capacity), released on uncharge', async () => {
  const room = new ObjectRoom(1000, Date.now, idleMemory(0, 100));
  const ns = new Namespace('a');
  assert.equal(await room.reserve(put('a/x', 400), ns, false), 'memory');
  assert.equal(room.memoryUsed, 500);
  assert.equal(ns.bytes.memory, 400, 'the namespace counts object bytes');
  assert.equal(await room.reserve({ ...put('a/s', 400), placement: 'shm' }, ns, false), 'shm');
  assert.equal(room.memoryUsed, 900);
  assert.equal(await room.reserve(put('a/d', 400), ns, true), 'disk', 'spills when its cost does not fit');
  room.uncharge(ns, 'memory', 400);
  room.uncharge(ns, 'shm', 400);
  room.uncharge(ns, 'disk', 400);
  assert.equal(room.memoryUsed, 0);
});

test('object room: waiters granted in one pass are each charged at the grant (idle memory evicted for them)', async () => {
  const idle = idleMemory(0);
  const room = new ObjectRoom(1000, Date.now, idle);
  const ns = new Namespace('a');
  assert.equal(await room.reserve(put('a/big', 1000), ns, false), 'memory');
  const waiting = [1, 2, 3].map((i) => room.reserve(put(`a/w${i}`, 400, true), ns, false));
  idle.idle = 300; // the big object's buffer went idle: it still counts
  room.uncharge(ns, 'memory', 1000);
  const granted = await Promise.all(waiting.slice(0, 2));
  assert.deepEqual(granted, ['memory', 'memory']);
  assert.equal(room.memoryUsed, 800);
  assert.equal(idle.idle, 200, 'idle bytes evicted so the two grants fit');
  room.failAll(tcError('TC_ERR_SHUTTING_DOWN', 'closed'));
  await assert.rejects(waiting[2]!, { code: 'TC_ERR_SHUTTING_DOWN' });
});
