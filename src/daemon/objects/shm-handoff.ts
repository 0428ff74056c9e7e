// Same-host object hand-off (docs/api.md, "Objects"): a put lease hands a client the segment file its
// object's bytes go into (placement 'shm' in the store), and the commit checks the CRC of what is in the
// file; a get lease hands out the segment an object lives in. Leases end on their own after `ttlMs`: an
// uncommitted put is then aborted (its room freed), and a get lease stops pinning its segment. A get lease
// is a read lease: it never blocks a delete, which frees the segment once the lease ends or expires.

import { randomBytes } from 'node:crypto';
import { tcError } from '../../core/errors.js';
import type { ShmGetResponse, ShmPutCommitResponse, ShmPutRequest, ShmPutResponse } from '../../protocol/http/objects.js';
import type { ObjectStoreApi, PendingPut, ReadLease } from '../../store/objects/object-store-api.js';

/** How long a put or get lease lives by default. */
export const SHM_HANDOFF_TTL_MS = 60_000;

interface PutLease {
  readonly put: PendingPut;
  readonly timer: NodeJS.Timeout;
}

interface GetLease {
  readonly lease: ReadLease;
  /** A chunk is handed out (the whole object) until the lease ends: a delete waits for it, bounded by the lease. */
  readonly pinned: boolean;
  readonly timer: NodeJS.Timeout;
}

/**
 * The shm put and get leases of one daemon.
 *
 * @example
 * const handoff = new ObjectShmHandoff(store);
 * const { putId, path } = await handoff.beginPut({ key: 'ns/a', size: 4096 }, undefined);
 * // ...the client writes 4096 bytes into path...
 * await handoff.commitPut(putId, crc);
 */
export class ObjectShmHandoff {
  private readonly puts = new Map<string, PutLease>();
  private readonly gets = new Map<string, GetLease>();

  private readonly ttlMs: number;

  constructor(
    private readonly store: ObjectStoreApi,
    private readonly opts: { ttlMs?: number; onCommit?: (bytes: number) => void; onGet?: (bytes: number) => void } = {},
  ) {
    this.ttlMs = opts.ttlMs ?? SHM_HANDOFF_TTL_MS;
  }

  /**
   * Reserves room for an object in a segment file and leases it to the caller. `timeoutMs` bounds the whole
   * put (waiting for room, writing, commit; default twice the lease time); the lease handed out ends at the
   * latest `ttlMs` after it was handed out.
   *
   * @throws TC_ERR_INVALID_ARGUMENT, TC_ERR_AUTH, TC_ERR_BACKPRESSURE, TC_ERR_BUDGET, TC_ERR_CONFLICT, TC_ERR_TIMEOUT
   */
  async beginPut(req: ShmPutRequest, storeToken: string | undefined): Promise<ShmPutResponse> {
    const deadline = Date.now() + (req.timeoutMs ?? 2 * this.ttlMs);
    const put = await this.store.beginPut({
      key: req.key,
      size: req.size,
      storeToken,
      txn: req.txn,
      ifVersion: req.ifVersion,
      ttlMs: req.ttlMs,
      waitForRoom: req.waitForRoom,
      deadline,
      placement: 'shm',
    });
    const expiresAt = Math.min(deadline, Date.now() + this.ttlMs);
    if (put.path === undefined) {
      put.abort();
      throw tcError('TC_ERR_UNAVAILABLE', `object ${req.key}: no shared-memory segment for it on this daemon; put it over tcp`, {
        details: { reason: 'no_shm' },
      });
    }
    const putId = randomBytes(12).toString('base64url');
    const timer = setTimeout(
      () => {
        if (this.puts.delete(putId)) put.abort();
      },
      Math.max(0, expiresAt - Date.now()),
    );
    timer.unref();
    this.puts.set(putId, { put, timer });
    return { putId, path: put.path, size: put.size, expiresAt };
  }

  /**
   * The client wrote the bytes: checks their CRC32C against `crc` and commits (or parks in the txn). On any
   * failure the put is aborted.
   *
   * @throws TC_ERR_LEASE_NOT_FOUND (unknown, committed or expired: the put was aborted), TC_ERR_CHECKSUM, TC_ERR_CONFLICT
   */
  async commitPut(putId: string, crc: number): Promise<ShmPutCommitResponse> {
    const lease = this.takePut(putId);
    try {
      const { version } = await lease.put.finish(crc);
      this.opts.onCommit?.(lease.put.size);
      return { key: lease.put.key, version, bytes: lease.put.size };
    } catch (error) {
      lease.put.abort();
      throw error;
    }
  }

  /** Aborts a put lease. @throws TC_ERR_LEASE_NOT_FOUND */
  abortPut(putId: string): void {
    this.takePut(putId).put.abort();
  }

  /**
   * Leases the segment an object lives in.
   *
   * @throws TC_ERR_NOT_FOUND (details.reason `not_in_shm` when the object is not in a segment: use tcp),
   *   TC_ERR_OBJECT_LOST, TC_ERR_AUTH, TC_ERR_SHORT_READ / TC_ERR_DESTINATION_SIZE (expectBytes differs)
   */
  async openGet(key: string, expectBytes: number | undefined, storeToken: string | undefined): Promise<ShmGetResponse> {
    const expiresAt = Date.now() + this.ttlMs;
    const lease = this.store.openRead(key, storeToken, expiresAt);
    let pinned = false;
    try {
      if (lease.tier !== 'shm' || lease.path === undefined)
        throw tcError('TC_ERR_NOT_FOUND', `object ${key} is not in shared memory (tier ${lease.tier}); get it over tcp`, {
          details: { key, reason: 'not_in_shm' },
        });
      if (expectBytes !== undefined && expectBytes !== lease.size)
        throw lease.size < expectBytes
          ? tcError('TC_ERR_SHORT_READ', `object ${key} has ${lease.size} bytes, fewer than the ${expectBytes} expected`)
          : tcError('TC_ERR_DESTINATION_SIZE', `object ${key} has ${lease.size} bytes, more than the ${expectBytes} expected`);
      if (lease.size > 0) {
        // The whole object counts as being copied until the lease ends: a delete frees the segment after that.
        await lease.chunk(0, lease.size);
        pinned = true;
      }
    } catch (error) {
      if (pinned) lease.done();
      lease.release();
      throw error;
    }
    const leaseId = randomBytes(12).toString('base64url');
    const timer = setTimeout(() => this.endGet(leaseId), this.ttlMs);
    timer.unref();
    this.gets.set(leaseId, { lease, pinned, timer });
    this.opts.onGet?.(lease.size);
    return { leaseId, path: lease.path, size: lease.size, version: lease.version, crc: lease.crc, expiresAt };
  }

  /** Ends a get lease. @throws TC_ERR_LEASE_NOT_FOUND */
  releaseGet(leaseId: string): void {
    if (!this.endGet(leaseId))
      throw tcError('TC_ERR_LEASE_NOT_FOUND', `no shm get lease '${leaseId}' (released or expired)`, { details: { leaseId } });
  }

  /** Leases held. */
  get size(): { puts: number; gets: number } {
    return { puts: this.puts.size, gets: this.gets.size };
  }

  /** Aborts every put lease and ends every get lease (shutdown). */
  close(): void {
    for (const id of [...this.puts.keys()]) this.abortPut(id);
    for (const id of [...this.gets.keys()]) this.endGet(id);
  }

  private takePut(putId: string): PutLease {
    const lease = this.puts.get(putId);
    if (lease === undefined)
      throw tcError('TC_ERR_LEASE_NOT_FOUND', `no shm put '${putId}' (committed, aborted, or expired after ${this.ttlMs} ms: put again)`, {
        details: { putId },
      });
    this.puts.delete(putId);
    clearTimeout(lease.timer);
    return lease;
  }

  private endGet(leaseId: string): boolean {
    const g = this.gets.get(leaseId);
    if (g === undefined) return false;
    this.gets.delete(leaseId);
    clearTimeout(g.timer);
    if (g.pinned) g.lease.done();
    g.lease.release();
    return true;
  }
}
