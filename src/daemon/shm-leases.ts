// Same-host hand-off: a lease pins a shared-memory replica (a file on tmpfs) for a client, which reads or
// maps it and then releases the lease. Leases expire on their own, so a client that dies leaks nothing.

import { randomBytes } from 'node:crypto';
import type { ChunkChecksums } from '../bytes/chunk-checksums.js';
import { tcError } from '../core/errors.js';
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

interface Lease {
  readonly info: ShmLeaseInfo;
  readonly replica: Replica;
  readonly timer: NodeJS.Timeout;
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
   * `deadline` (Unix ms).
   *
   * @throws TC_ERR_BUDGET, TC_ERR_TIMEOUT
   */
  async create(rv: ResolvedView, deadline?: number, ctx?: FillContext): Promise<ShmLeaseInfo> {
    const replicaHit = this.views.hasReplica(rv, 'shm');
    const replica = await this.views.shmReplica(rv, deadline, ctx);
    if (replica.checksums === undefined) {
      this.views.cache.release(replica);
      throw tcError('TC_ERR_INTERNAL', `shm replica ${replica.key} has no checksums`);
    }
    const leaseId = randomBytes(12).toString('base64url');
    const info: ShmLeaseInfo = {
      leaseId,
      path: replica.path!,
      bytes: replica.bytes,
      expiresAt: Date.now() + this.ttlMs,
      replicaHit,
      checksums: replica.checksums,
    };
    const timer = setTimeout(() => this.release(leaseId), this.ttlMs);
    timer.unref();
    this.leases.set(leaseId, { info, replica, timer });
    return info;
  }

  /**
   * Releases a lease. With `discard`, the client found the bytes changed: the replica is dropped so the
   * next lease rebuilds it.
   *
   * @throws TC_ERR_LEASE_NOT_FOUND when unknown or expired.
   */
  release(leaseId: string, discard = false): void {
    const lease = this.leases.get(leaseId);
    if (lease === undefined)
      throw tcError('TC_ERR_LEASE_NOT_FOUND', `no lease '${leaseId}' (released or expired)`, { details: { leaseId } });
    clearTimeout(lease.timer);
    this.leases.delete(leaseId);
    if (discard) this.views.discard(lease.replica);
    this.views.cache.release(lease.replica);
  }

  get size(): number {
    return this.leases.size;
  }

  /** Releases every lease (shutdown). */
  close(): void {
    for (const id of [...this.leases.keys()]) this.release(id);
  }
}
