// Same-host hand-off: a lease pins a shared-memory replica (a file on tmpfs) for a client, which reads or
// maps it and then releases the lease. Leases expire on their own, so a client that dies leaks nothing. A
// progressive lease is handed out as soon as its file exists, while the replica is still being built: the
// client reads the chunks announced as written, and the lease pins the replica once the build is done.

import { randomBytes } from 'node:crypto';
import type { ChunkChecksums } from '../bytes/chunk-checksums.js';
import { tcError } from '../core/errors.js';
import type { ShmLeaseOpening } from '../protocol/http/loads.js';
import type { Replica } from '../store/replica-cache.js';
import type { ViewService, ResolvedView } from '../store/view-service.js';
import type { FillContext } from '../store/remote-views.js';

/** What a client gets for a lease. */
export interface ShmLeaseInfo {
  readonly leaseId: string;
  readonly path: string;
  readonly bytes: number;
  /** Unix milliseconds. */
  readonly expiresAt: number;
  readonly replicaHit: boolean;
  /** CRC32C per chunk of the file's bytes: the client checks what it reads against them. */
  readonly checksums: ChunkChecksums;
}

/** Hears a progressive lease: opened as soon as its file exists, then its chunks as they are written. */
export interface ShmLeaseProgress {
  opened(opening: ShmLeaseOpening): void;
  ready(firstChunk: number, crcs: readonly number[]): void;
}

interface Lease {
  /** Undefined while the replica is being built (a progressive lease handed out early). */
  replica: Replica | undefined;
  timer: NodeJS.Timeout;
  /** Released (or expired) before its build finished; `discard` asked. */
  released: boolean;
  discard: boolean;
}

/** Hands out and tracks leases. */
export class ShmLeases {
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly views: ViewService,
    private readonly ttlMs: number,
  ) {}

  /**
   * Pins (building if needed) the shm replica of `rv` and leases it; waits for room or a build up to
   * `deadline` (Unix ms). With `progress`, a build this call starts opens the lease as soon as the file
   * exists (`progress.opened`) and announces chunks as they are written; the lease is the same one this
   * resolves with.
   *
   * @throws TC_ERR_BUDGET, TC_ERR_TIMEOUT; TC_ERR_UNAVAILABLE when a progressive build had to be redone
   */
  async create(rv: ResolvedView, deadline?: number, ctx?: FillContext, progress?: ShmLeaseProgress): Promise<ShmLeaseInfo> {
    const replicaHit = this.views.hasReplica(rv, 'shm');
    let early: { leaseId: string; path: string; expiresAt: number } | undefined;
    const heard =
      progress === undefined
        ? undefined
        : {
            opened: (path: string, chunkBytes: number): void => {
              early = this.open(path);
              progress.opened({ leaseId: early.leaseId, path, bytes: rv.program.totalBytes, expiresAt: early.expiresAt, chunkBytes });
            },
            ready: (firstChunk: number, crcs: readonly number[]): void => progress.ready(firstChunk, crcs),
          };
    let replica: Replica;
    try {
      replica = await this.views.shmReplica(rv, deadline, ctx, heard);
    } catch (error) {
      if (early !== undefined) this.forget(early.leaseId);
      throw error;
    }
    if (replica.checksums === undefined || (early !== undefined && replica.path !== early.path)) {
      this.views.cache.release(replica);
      if (early !== undefined) this.forget(early.leaseId);
      throw replica.checksums === undefined
        ? tcError('TC_ERR_INTERNAL', `shm replica ${replica.key} has no checksums`)
        : tcError('TC_ERR_UNAVAILABLE', `the shm replica of ${replica.key} was rebuilt into another file while it was leased; retry`);
    }
    const { leaseId, expiresAt } = early ?? this.open(replica.path!);
    const lease = this.leases.get(leaseId);
    if (lease === undefined || lease.released) {
      // Released or expired while it was being built: the reference goes at once.
      if (lease?.discard === true) this.views.discard(replica);
      this.views.cache.release(replica);
      this.leases.delete(leaseId);
    } else lease.replica = replica;
    return { leaseId, path: replica.path!, bytes: replica.bytes, expiresAt, replicaHit, checksums: replica.checksums };
  }

  /**
   * Releases a lease. With `discard`, the client found the bytes changed: the replica is dropped so the
   * next lease rebuilds it. A lease still being built is released when its build ends.
   *
   * @throws TC_ERR_LEASE_NOT_FOUND when unknown or expired.
   */
  release(leaseId: string, discard = false): void {
    const lease = this.leases.get(leaseId);
    if (lease === undefined || lease.released)
      throw tcError('TC_ERR_LEASE_NOT_FOUND', `no lease '${leaseId}' (released or expired)`, { details: { leaseId } });
    clearTimeout(lease.timer);
    if (lease.replica === undefined) {
      lease.released = true;
      lease.discard = discard;
      return;
    }
    this.leases.delete(leaseId);
    if (discard) this.views.discard(lease.replica);
    this.views.cache.release(lease.replica);
  }

  /**
   * Extends a lease by the lease TTL from now (a client that keeps a lease file mapped renews it until its
   * arrays are gone); returns the new expiry (Unix ms).
   *
   * @throws TC_ERR_LEASE_NOT_FOUND when unknown, released or expired.
   */
  renew(leaseId: string): number {
    const lease = this.leases.get(leaseId);
    if (lease === undefined || lease.released)
      throw tcError('TC_ERR_LEASE_NOT_FOUND', `no lease '${leaseId}' (released or expired)`, { details: { leaseId } });
    clearTimeout(lease.timer);
    lease.timer = this.expiry(leaseId);
    return Date.now() + this.ttlMs;
  }

  /** Leases held (a progressive one from its opening). */
  get size(): number {
    let n = 0;
    for (const l of this.leases.values()) if (!l.released) n++;
    return n;
  }

  /** Releases every lease (shutdown). */
  close(): void {
    for (const [id, lease] of [...this.leases]) if (!lease.released) this.release(id);
  }

  /** A new lease on the file at `path`, its replica attached by {@link create}. */
  private open(path: string): { leaseId: string; path: string; expiresAt: number } {
    const leaseId = randomBytes(12).toString('base64url');
    this.leases.set(leaseId, { replica: undefined, timer: this.expiry(leaseId), released: false, discard: false });
    return { leaseId, path, expiresAt: Date.now() + this.ttlMs };
  }

  /** The timer that releases lease `leaseId` when its TTL runs out. */
  private expiry(leaseId: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (this.leases.get(leaseId)?.released === false) this.release(leaseId);
    }, this.ttlMs);
    timer.unref();
    return timer;
  }

  /** Drops a lease whose build failed. */
  private forget(leaseId: string): void {
    const lease = this.leases.get(leaseId);
    if (lease === undefined) return;
    clearTimeout(lease.timer);
    this.leases.delete(leaseId);
  }
}
