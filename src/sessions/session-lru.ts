// One cache instance's view of its sessions: per session, the hot copies held here (by entry uri: entries are
// immutable, so a copy stays valid while its uri is in the record), the operations pinning it and the lock
// of its changes; over the sessions with hot copies, least-recently-used order for swapping out.

import type { HotTier } from './hot-tier.js';
import { Mutex } from './mutex.js';

/** The local state of one session. */
export class SessionSlot {
  /** Operations running on the session here (a pinned session is never swapped out). */
  pins = 0;
  readonly lock = new Mutex();
  /** Hot copies by entry uri. */
  readonly copies = new Map<string, Buffer>();
  hotBytes = 0;

  constructor(readonly sessionId: string) {}

  /** True when the LRU may swap the session out now. */
  get idle(): boolean {
    return this.pins === 0 && !this.lock.busy;
  }
}

/**
 * The sessions of one cache instance, in least-recently-used order of those with hot copies.
 *
 * @example
 * const slot = lru.pin(id); try { ... lru.addCopy(slot, uri, buf); lru.touch(slot) } finally { lru.unpin(slot) }
 */
export class SessionLru {
  private readonly slots = new Map<string, SessionSlot>();
  /** Slots with hot copies; Map order is recency (the first is the least recently used). */
  private readonly order = new Map<string, SessionSlot>();

  constructor(private readonly hot: HotTier) {}

  /** Operations running here (pins of every session). */
  pinned = 0;

  /** Sessions with hot copies here. */
  get hotSessions(): number {
    return this.order.size;
  }

  /** The slot of `sessionId`, if it has local state. */
  peek(sessionId: string): SessionSlot | undefined {
    return this.slots.get(sessionId);
  }

  /** The slot of `sessionId`, pinned (created when missing). */
  pin(sessionId: string): SessionSlot {
    let slot = this.slots.get(sessionId);
    if (slot === undefined) {
      slot = new SessionSlot(sessionId);
      this.slots.set(sessionId, slot);
    }
    slot.pins++;
    this.pinned++;
    return slot;
  }

  /** Undoes one `pin`; forgets the slot when nothing holds it. */
  unpin(slot: SessionSlot): void {
    slot.pins--;
    this.pinned--;
    this.forgetIfUnused(slot);
  }

  /** Makes `slot` the most recently used. */
  touch(slot: SessionSlot): void {
    if (slot.copies.size === 0) return;
    this.order.delete(slot.sessionId);
    this.order.set(slot.sessionId, slot);
  }

  /** Records a hot copy whose bytes were reserved in the hot tier. */
  addCopy(slot: SessionSlot, uri: string, bytes: Buffer): void {
    const old = slot.copies.get(uri);
    if (old !== undefined) this.dropCopy(slot, uri);
    slot.copies.set(uri, bytes);
    slot.hotBytes += bytes.length;
    if (!this.order.has(slot.sessionId)) this.order.set(slot.sessionId, slot);
  }

  /**
   * Drops the hot copy of `uri` (if any) and gives its bytes back; answers the bytes freed. `reuse` when no
   * reader can still hold a view of the copy (the session is not pinned): its buffer may be handed out again.
   */
  dropCopy(slot: SessionSlot, uri: string, reuse = false): number {
    const copy = slot.copies.get(uri);
    if (copy === undefined) return 0;
    slot.copies.delete(uri);
    slot.hotBytes -= copy.length;
    this.hot.release(copy.length, reuse ? copy : undefined);
    if (slot.copies.size === 0) this.order.delete(slot.sessionId);
    return copy.length;
  }

  /** Drops every hot copy of `slot` (`reuse`: see dropCopy); answers the bytes freed. */
  dropAll(slot: SessionSlot, reuse = false): number {
    let freed = 0;
    for (const uri of [...slot.copies.keys()]) freed += this.dropCopy(slot, uri, reuse);
    this.forgetIfUnused(slot);
    return freed;
  }

  /** Drops the copies whose uri is not in `keep`; answers the bytes freed. */
  dropExcept(slot: SessionSlot, keep: ReadonlySet<string>): number {
    let freed = 0;
    for (const uri of [...slot.copies.keys()]) if (!keep.has(uri)) freed += this.dropCopy(slot, uri);
    return freed;
  }

  /** The least recently used idle session other than `except`, its lock taken; undefined when none is idle. */
  takeVictim(except?: SessionSlot): SessionSlot | undefined {
    for (const slot of this.order.values()) {
      if (slot === except || !slot.idle) continue;
      slot.lock.tryLock();
      return slot;
    }
    return undefined;
  }

  /** Every slot with hot copies (for shutdown). */
  hotSlots(): SessionSlot[] {
    return [...this.order.values()];
  }

  /** Forgets `slot` when it has no copies, pins or lock users. */
  forgetIfUnused(slot: SessionSlot): void {
    if (slot.pins === 0 && !slot.lock.busy && slot.copies.size === 0 && this.slots.get(slot.sessionId) === slot) {
      this.slots.delete(slot.sessionId);
    }
  }
}
