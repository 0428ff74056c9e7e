// The daemon's place in the cluster's catalog: heartbeats (an upsert of its record every third of the
// daemon TTL), the catalog's health as this daemon sees it, and recovery. The catalog is an outside
// service that can fail: while it is unavailable the daemon keeps serving what it holds, reports
// `catalog: unavailable`, retries with backoff, and when it answers again re-registers its replicas.

import type { Catalog, DaemonRecord } from '../catalog/catalog.js';
import type { Logger } from '../core/logger.js';

/** Options of the membership. */
export interface MembershipOptions {
  readonly catalog: Catalog;
  /** This daemon's record (heartbeatAt is filled in at each beat). */
  readonly record: () => Omit<DaemonRecord, 'heartbeatAt'>;
  readonly daemonTtlMs: number;
  readonly log: Logger;
  /** Re-registers every replica this daemon holds (after an outage, or when a registry update failed). */
  readonly resync: () => Promise<void>;
  readonly onStatus?: (up: boolean) => void;
  readonly onFailure?: (operation: string) => void;
}

/** First retry after a failed heartbeat (ms); doubles up to the heartbeat interval. */
const FIRST_RETRY_MS = 250;

/**
 * Heartbeats and catalog health.
 *
 * @example const m = new ClusterMembership({ catalog, record, daemonTtlMs, log, resync }); await m.start();
 */
export class ClusterMembership {
  private up = true;
  /** A replica registry update failed: the next good heartbeat re-registers everything. */
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private retryMs = FIRST_RETRY_MS;
  private beating: Promise<void> | undefined;

  constructor(private readonly opts: MembershipOptions) {}

  /** 'ok' while the catalog answers, 'unavailable' while it does not. */
  get status(): 'ok' | 'unavailable' {
    return this.up ? 'ok' : 'unavailable';
  }

  private get intervalMs(): number {
    return Math.max(100, Math.floor(this.opts.daemonTtlMs / 3));
  }

  /** Registers the daemon (first heartbeat; a failure is reported and retried, not thrown) and starts beating. */
  async start(): Promise<void> {
    await this.beat();
  }

  /** Notes that a catalog call on behalf of this daemon failed: mark unavailable, retry soon, resync after. */
  failed(operation: string, error: unknown): void {
    this.opts.onFailure?.(operation);
    this.dirty = true;
    this.opts.log.warn({ err: error, operation }, 'catalog call failed; will re-register when it answers');
    this.setUp(false);
    this.schedule(Math.min(this.retryMs, this.intervalMs));
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.opts.onStatus?.(up);
    if (up) this.opts.log.info({}, 'catalog available again');
    else this.opts.log.warn({}, 'catalog unavailable: serving what this daemon holds, retrying with backoff');
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.beat(), ms);
    this.timer.unref();
  }

  /** One heartbeat (joined when one is in flight); on success after a failure, re-registers replicas. */
  beat(): Promise<void> {
    this.beating ??= this.beatOnce().finally(() => (this.beating = undefined));
    return this.beating;
  }

  private async beatOnce(): Promise<void> {
    try {
      await this.opts.catalog.upsertDaemon({ ...this.opts.record(), heartbeatAt: Date.now() });
      if (!this.up || this.dirty) {
        this.dirty = false;
        await this.opts.resync();
        this.opts.log.info({}, 'replicas re-registered with the catalog');
      }
      this.setUp(true);
      this.retryMs = FIRST_RETRY_MS;
      this.schedule(this.intervalMs);
    } catch (error) {
      this.opts.onFailure?.('heartbeat');
      this.dirty = true;
      if (this.up) this.opts.log.warn({ err: error }, 'heartbeat failed');
      this.setUp(false);
      this.schedule(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, this.intervalMs);
    }
  }

  /** Stops beating; with `draining`, first tells the catalog (best effort) so peers stop routing here. */
  async stop(draining: boolean): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.beating?.catch(() => undefined);
    if (draining) {
      await this.opts.catalog
        .upsertDaemon({ ...this.opts.record(), state: 'draining', heartbeatAt: Date.now() })
        .catch((e: unknown) => this.opts.log.warn({ err: e }, 'cannot mark this daemon draining in the catalog'));
    }
  }
}
