// Room for objects: the object memory budget (memory and shm tiers) and each namespace's maxBytes, the
// tier a put gets (memory when it fits, else disk when spilling), and the FIFO waiters for room. Idle
// buffers and segments kept for reuse count inside the budget and give way to a put that needs their room.

import { constants as bufferConstants } from 'node:buffer';
import { tcError, type TensorcastError } from '../../core/errors.js';
import type { Namespace } from './namespaces.js';
import type { ObjectTier, PutRequest } from './object-store-api.js';
import { RoomWaiters } from './room-waiters.js';

/** Largest object held in memory: one Buffer (Node 20 caps a Buffer at 4 GiB). */
export const MAX_MEMORY_OBJECT_BYTES = Math.min(2 ** 32 - 1, bufferConstants.MAX_LENGTH);

/** Memory kept idle for reuse (pooled buffers, freed shm segments): it counts inside the budget. */
export interface IdleMemory {
  /** Idle bytes held now. */
  idleBytes(): number;
  /** Releases idle bytes, at least `bytes` of them when it holds that many. */
  evict(bytes: number): void;
  /** What an object of `size` bytes on `tier` takes of the memory budget (a pooled buffer: its capacity). */
  cost(tier: ObjectTier, size: number): number;
}

/** No idle memory: an object costs its size (memory and shm tiers). */
const NO_IDLE: IdleMemory = {
  idleBytes: () => 0,
  evict: () => undefined,
  cost: (tier, size) => (tier === 'disk' ? 0 : size),
};

/** Why a put cannot get room now. */
type Blocker = 'full-namespace' | 'full-memory';

/**
 * The budget and limits puts draw on.
 *
 * @example const tier = await room.reserve(request, ns, spill); // charged: room.uncharge(ns, tier, request.size) when it ends
 */
export class ObjectRoom {
  /** Memory-tier and shm-tier bytes held (all namespaces). */
  memoryUsed = 0;
  private readonly waiters: RoomWaiters;

  constructor(
    private readonly memoryBytes: number,
    private readonly now: () => number,
    private readonly idle: IdleMemory = NO_IDLE,
  ) {
    this.waiters = new RoomWaiters(now);
  }

  /** Counts an object of `bytes` on `tier` as held by `ns` (the budget is charged its {@link IdleMemory.cost}). */
  charge(ns: Namespace, tier: ObjectTier, bytes: number): void {
    ns.bytes[tier] += bytes;
    this.memoryUsed += this.idle.cost(tier, bytes);
  }

  /** Gives an object's bytes back and serves the waiters that now fit. */
  uncharge(ns: Namespace, tier: ObjectTier, bytes: number): void {
    ns.bytes[tier] -= bytes;
    this.memoryUsed -= this.idle.cost(tier, bytes);
    this.waiters.pump();
  }

  /** Serves the waiters that fit (after a limit was raised). */
  pump(): void {
    this.waiters.pump();
  }

  failAll(error: TensorcastError): void {
    this.waiters.failAll(error);
  }

  /**
   * Picks the tier of a put and checks its room, waiting (FIFO) when asked, and charges the bytes to that
   * tier at the moment it decides (not when the caller's continuation runs: a pump that grants several
   * waiters in one pass must see each grant's bytes, or it admits them all past maxBytes). The caller
   * uncharges them when the put ends.
   *
   * @throws TC_ERR_BACKPRESSURE, TC_ERR_BUDGET, TC_ERR_INVALID_ARGUMENT
   */
  reserve(request: PutRequest, ns: Namespace, spillOn: boolean): Promise<ObjectTier> {
    const { size } = request;
    const shm = request.placement === 'shm';
    const spill = spillOn && !shm;
    if (ns.maxBytes !== null && size > ns.maxBytes)
      throw tcError(
        'TC_ERR_BACKPRESSURE',
        `object '${request.key}' (${size} bytes) is larger than namespace '${ns.name}' maxBytes (${ns.maxBytes})`,
      );
    if (!spill && !shm && size > MAX_MEMORY_OBJECT_BYTES)
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `object '${request.key}' (${size} bytes) is over the ${MAX_MEMORY_OBJECT_BYTES} bytes a memory object can hold: enable objectSpill`,
      );
    if (!spill && this.idle.cost(shm ? 'shm' : 'memory', size) > this.memoryBytes)
      throw tcError(
        'TC_ERR_BUDGET',
        `object '${request.key}' (${size} bytes) is larger than the whole object memory budget (${this.memoryBytes} bytes)${shm ? '' : ': enable objectSpill'}`,
      );
    // What the put may wait for: a limited namespace, memory when it cannot go to disk. 0 bytes need neither.
    const resources: string[] = [];
    if (size > 0 && ns.maxBytes !== null) resources.push(`ns:${ns.name}`);
    if (size > 0 && !spill) resources.push('memory');
    const queued = this.waiters.busy(resources);
    const first = queued === undefined ? this.place(size, shm, spill, ns) : queued === 'memory' ? 'full-memory' : 'full-namespace';
    if (!isBlocker(first)) {
      this.charge(ns, first, size);
      return Promise.resolve(first);
    }
    if (request.waitForRoom !== true || request.deadline <= this.now()) throw this.noRoom(request, ns, first);
    return new Promise<ObjectTier>((resolve, reject) => {
      let tier: ObjectTier | Blocker = first;
      this.waiters.add(
        {
          resources,
          fits: () => {
            tier = this.place(size, shm, spill, ns);
            return !isBlocker(tier);
          },
          grant: () => {
            this.charge(ns, tier as ObjectTier, size);
            resolve(tier as ObjectTier);
          },
          fail: (error) => reject(error ?? this.noRoom(request, ns, tier as Blocker)),
        },
        request.deadline,
      );
    });
  }

  /** The tier a put of `size` gets now, or what blocks it. */
  private place(size: number, shm: boolean, spill: boolean, ns: Namespace): ObjectTier | Blocker {
    if (!ns.hasRoom(size)) return 'full-namespace';
    const cost = this.idle.cost(shm ? 'shm' : 'memory', size);
    // Idle buffers and segments give way to a put that fits once they are gone.
    const over = this.memoryUsed + this.idle.idleBytes() + cost - this.memoryBytes;
    if (over > 0 && this.memoryUsed + cost <= this.memoryBytes) this.idle.evict(over);
    const inMemory = this.memoryUsed + this.idle.idleBytes() + cost <= this.memoryBytes && (shm || size <= MAX_MEMORY_OBJECT_BYTES);
    if (shm) return inMemory ? 'shm' : 'full-memory';
    if (inMemory) return 'memory';
    return spill ? 'disk' : 'full-memory';
  }

  private noRoom(request: PutRequest, ns: Namespace, blocker: Blocker): TensorcastError {
    const waited = request.waitForRoom === true ? ' (waited until the deadline)' : '';
    return blocker === 'full-namespace'
      ? tcError(
          'TC_ERR_BACKPRESSURE',
          `namespace '${ns.name}' holds ${ns.residentBytes} of its ${ns.maxBytes ?? 'unlimited'} maxBytes: no room for '${request.key}' (${request.size} bytes)${waited}`,
          {
            details: { namespace: ns.name },
          },
        )
      : tcError(
          'TC_ERR_BUDGET',
          `the object memory budget holds ${this.memoryUsed} of ${this.memoryBytes} bytes: no room for '${request.key}' (${request.size} bytes)${waited}`,
        );
  }
}

function isBlocker(x: ObjectTier | Blocker): x is Blocker {
  return x === 'full-namespace' || x === 'full-memory';
}
