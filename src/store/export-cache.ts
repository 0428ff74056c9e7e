// The source daemon's derived-view export cache (docs/architecture.md section 5): dense views prepared
// from canonical bytes so that destinations fetch exactly the view's bytes. Entries go pending -> ready ->
// draining under their own byte budget and TTL; fetches are counted per transfer id; retirement withdraws
// the route, refuses new fetches, waits (bounded) for active ones, frees, then unregisters. Pure logic:
// the daemon supplies the build and the catalog hooks.

import { tcError, isTensorcastError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { withDeadline } from './deadline.js';
import {
  EXPORT_STATES,
  ExportRecord,
  MAX_EXPORT_SEGMENT_BYTES,
  exportId,
  exportUnavailable,
  type ExportEntry,
  type ExportEventName,
  type ExportKey,
  type ExportState,
  type RetireReason,
} from './export-entry.js';
import { pickExportVictims } from './export-eviction.js';

export { EXPORT_STATES, EXPORT_UNAVAILABLE_REASONS, MAX_EXPORT_SEGMENT_BYTES } from './export-entry.js';
export type { ExportEntry, ExportEventName, ExportKey, ExportState, ExportUnavailableReason, RetireReason } from './export-entry.js';

/** How the cache is configured and wired. */
export interface ExportCacheOptions {
  /** `--export-budget`: bytes of pending, ready and draining entries (until freed); separate from the replica budget. */
  readonly budgetBytes: number;
  /** `--export-ttl`: an entry unused by the data plane for this long is retired (default 10 min at the CLI). */
  readonly ttlMs: number;
  /** Bound of each wait during retirement (active fetches, a build still running, each hook). Default 30 s. */
  readonly drainTimeoutMs?: number;
  /**
   * Materializes the view into freshly allocated segments (each at most 1 GiB, `bytes` in total), called
   * once per preparation. `deadline` (Unix ms) is that of the prepare that created the entry.
   */
  readonly build: (key: ExportKey, bytes: number, deadline: number) => Promise<Buffer[]>;
  /** Catalog hooks: publish once ready; withdraw first in retirement; unregister last. Failures are logged, never fatal. */
  readonly publish?: (e: ExportEntry) => Promise<void>;
  readonly withdraw?: (e: ExportEntry, reason: RetireReason) => Promise<void>;
  readonly unregister?: (e: ExportEntry, reason: RetireReason) => Promise<void>;
  /** Called synchronously at each lifecycle step (metrics); a throwing listener is logged and ignored. */
  readonly onEvent?: (name: ExportEventName, e: ExportEntry, detail?: Record<string, unknown>) => void;
  readonly log: Logger;
  /** The clock of TTLs and LRU order (Unix ms). Deadlines are always wall-clock Unix ms. */
  readonly now?: () => number;
  /** Period of the TTL sweep (an unref'd timer); 0 = no timer. Default: a quarter of the TTL, within [1 s, 30 s]. */
  readonly sweepIntervalMs?: number;
}

/**
 * Entries and bytes by state. Pending bytes are reserved (a build may not have started: it waits until
 * retiring entries free theirs); draining bytes count until freed.
 */
export interface ExportCacheStats {
  entries: Record<ExportState, number>;
  bytes: Record<ExportState, number>;
  budgetBytes: number;
}

const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/**
 * Derived-view exports of one source daemon.
 *
 * @example
 * const cache = new ExportCache({ budgetBytes, ttlMs: 600_000, build, publish, withdraw, unregister, log });
 * await cache.prepare(key, viewBytes, deadline);          // joins a preparation in flight
 * const entry = cache.beginFetch(key, transferId);        // send entry.segments ...
 * cache.endFetch(transferId);                             // ... then end, whatever happened
 */
export class ExportCache {
  private readonly records = new Map<string, ExportRecord>();
  /** Transfer id -> the entry (and generation) its fetch is counted on. */
  private readonly transfers = new Map<string, { record: ExportRecord; generation: number }>();
  /** Admitted pending entries whose build waits for retiring entries to free their bytes. */
  private waitingRoom: ExportRecord[] = [];
  private generation = 0;
  private closing: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly drainTimeoutMs: number;

  /** @throws TC_ERR_INVALID_ARGUMENT for a negative or non-integer budget, a non-positive TTL or a negative timeout. */
  constructor(private readonly options: ExportCacheOptions) {
    const { budgetBytes, ttlMs } = options;
    const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    const sweepMs = options.sweepIntervalMs ?? Math.min(30_000, Math.max(1_000, Math.floor(ttlMs / 4)));
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) throw badOption('budgetBytes', budgetBytes);
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw badOption('ttlMs', ttlMs);
    if (!Number.isFinite(drainTimeoutMs) || drainTimeoutMs < 0) throw badOption('drainTimeoutMs', drainTimeoutMs);
    if (!Number.isFinite(sweepMs) || sweepMs < 0) throw badOption('sweepIntervalMs', sweepMs);
    this.drainTimeoutMs = drainTimeoutMs;
    this.now = options.now ?? Date.now;
    this.log = options.log.child({ component: 'export-cache' });
    if (sweepMs > 0) {
      const sweep = () => this.sweep().catch((error: unknown) => this.log.error({ err: String(error) }, 'export sweep failed'));
      this.timer = setInterval(() => void sweep(), sweepMs);
      this.timer.unref();
    }
  }

  /**
   * The ready entry for `key`, preparing it when absent. A ready entry is reused (its TTL refreshed: a
   * prepare is data-plane intent); a pending one is joined (one build, one entry for every prepare).
   *
   * Deadline: running out rejects this caller with TC_ERR_TIMEOUT, but the preparation goes on for other
   * joiners and for later prepares (the build is bounded by its creator's deadline, not by a joiner's). A
   * joiner whose own deadline is later and whose joined build failed with TC_ERR_TIMEOUT starts afresh.
   *
   * @throws TC_ERR_EXPORT_UNAVAILABLE reason `export_budget_exhausted` (bytes above the budget, or not
   *   enough idle entries to evict; nothing is reserved then) or `drain_attach_closed` (the entry is
   *   retiring); TC_ERR_TIMEOUT; TC_ERR_SHUTTING_DOWN after {@link close}; TC_ERR_INVALID_ARGUMENT (bad
   *   key or bytes, or bytes differing from the entry's); the build's own error.
   */
  async prepare(key: ExportKey, bytes: number, deadline: number): Promise<ExportEntry> {
    const id = exportId(key);
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `export ${id}: bytes must be a non-negative integer`, { details: { bytes } });
    }
    for (;;) {
      if (this.closing !== undefined) throw tcError('TC_ERR_SHUTTING_DOWN', `export ${id}: the export cache is closed`);
      let record = this.records.get(id);
      const joined = record !== undefined;
      record ??= this.create(key, id, bytes, deadline);
      if (record.bytes !== bytes) {
        throw tcError('TC_ERR_INVALID_ARGUMENT', `export ${id}: prepared with ${record.bytes} bytes, asked for ${bytes}`, {
          details: { bytes, entryBytes: record.bytes },
        });
      }
      if (record.state === 'draining') throw exportUnavailable('drain_attach_closed', key, 'the entry is retiring');
      if (record.state === 'ready') {
        this.reuse(record, { joined: false });
        return record.view();
      }
      try {
        await withDeadline(record.ready, deadline, `waiting for export ${id} to be prepared`);
      } catch (error) {
        const buildTimedOut = error === record.failure && isTensorcastError(error, 'TC_ERR_TIMEOUT');
        if (buildTimedOut && record.buildDeadline < deadline && Date.now() < deadline) continue;
        throw error;
      }
      // The entry may already be retiring again (pressure, shutdown): the caller's beginFetch then says so.
      if (joined && isReady(record)) this.reuse(record, { joined: true });
      return record.view();
    }
  }

  /**
   * Counts a fetch of `key`'s bytes under `transferId` (BeginReplicaFetch) and refreshes the TTL. Idempotent:
   * the same id on the same entry and generation returns the entry without counting twice.
   *
   * @throws TC_ERR_EXPORT_UNAVAILABLE reason `not_found`, `entry_pending` or `drain_attach_closed`;
   *   TC_ERR_INVALID_ARGUMENT when `transferId` is empty or already counted on another entry.
   */
  beginFetch(key: ExportKey, transferId: string): ExportEntry {
    const id = exportId(key);
    if (typeof transferId !== 'string' || transferId === '') {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `export ${id}: a fetch needs a non-empty transfer id`);
    }
    const record = this.records.get(id);
    const bound = this.transfers.get(transferId);
    if (bound !== undefined) {
      if (bound.record === record && bound.generation === record.generation) return record.view();
      throw tcError('TC_ERR_INVALID_ARGUMENT', `transfer ${transferId} is already counted on export ${bound.record.id}`, {
        details: { transferId, boundTo: bound.record.id, generation: bound.generation },
      });
    }
    if (record === undefined) throw exportUnavailable('not_found', key, 'no such export on this daemon');
    if (record.state === 'pending') throw exportUnavailable('entry_pending', key, 'the export is still being prepared');
    if (!record.acceptingFetches) throw exportUnavailable('drain_attach_closed', key, 'the export is retiring');
    const now = this.now();
    record.lastAccessAt = now;
    record.expiresAt = now + this.options.ttlMs;
    this.step('ttl_refresh', record, 'debug', { expiresAt: record.expiresAt });
    record.activeFetches++;
    this.transfers.set(transferId, { record, generation: record.generation });
    this.step('fetch_begin', record, 'debug', { transferId, activeFetches: record.activeFetches });
    return record.view();
  }

  /**
   * Ends the fetch counted under `transferId` (EndReplicaFetch). Tolerant: an unknown id, a generation
   * mismatch or a zero counter is a no-op.
   */
  endFetch(transferId: string, reason?: string): void {
    const bound = this.transfers.get(transferId);
    if (bound === undefined) {
      this.log.debug({ transferId, reason }, 'export fetch end ignored: unknown transfer');
      return;
    }
    this.transfers.delete(transferId);
    const { record, generation } = bound;
    if (this.records.get(record.id) !== record || record.generation !== generation || record.activeFetches === 0) {
      this.log.debug({ ...record.logFields(), transferId, reason }, 'export fetch end ignored: entry gone or not counting');
      return;
    }
    record.activeFetches--;
    record.lastAccessAt = this.now();
    this.step('fetch_end', record, 'debug', { transferId, reason, activeFetches: record.activeFetches });
    record.checkIdle();
  }

  /** Retires `key`'s entry in order (joins a retirement in progress); no entry: nothing to do. */
  retire(key: ExportKey, reason: RetireReason): Promise<void> {
    const record = this.records.get(exportId(key));
    return record === undefined ? Promise.resolve() : this.retireRecord(record, reason);
  }

  /** Retires every expired ready entry without active fetches (reason `ttl_expired`). */
  async sweep(): Promise<void> {
    if (this.closing !== undefined) return;
    const now = this.now();
    const expired = [...this.records.values()].filter((r) => r.state === 'ready' && r.activeFetches === 0 && r.expiresAt <= now);
    await Promise.all(expired.map((r) => this.retireRecord(r, 'ttl_expired')));
  }

  /** A snapshot of `key`'s entry; never refreshes its TTL. */
  get(key: ExportKey): ExportEntry | undefined {
    return this.records.get(exportId(key))?.view();
  }

  /** Snapshots of every entry (for re-registering them with the catalog); never refreshes a TTL. */
  list(): ExportEntry[] {
    return [...this.records.values()].map((r) => r.view());
  }

  /** Entries and bytes by state (see {@link ExportCacheStats}), and the budget. Never refreshes a TTL. */
  stats(): ExportCacheStats {
    const entries = Object.fromEntries(EXPORT_STATES.map((s) => [s, 0])) as Record<ExportState, number>;
    const bytes = { ...entries };
    for (const r of this.records.values()) {
      entries[r.state]++;
      if (!r.freed) bytes[r.state] += r.bytes;
    }
    return { entries, bytes, budgetBytes: this.options.budgetBytes };
  }

  /**
   * Retires every entry (reason `drain` for a daemon draining on SIGTERM, `shutdown` otherwise) and refuses
   * later prepares with TC_ERR_SHUTTING_DOWN.
   */
  close(reason: Extract<RetireReason, 'drain' | 'shutdown'> = 'shutdown'): Promise<void> {
    if (this.closing === undefined) {
      clearInterval(this.timer);
      const all = [...this.records.values()].map((r) => this.retireRecord(r, reason));
      this.closing = Promise.all(all).then(() => undefined);
    }
    return this.closing;
  }

  /** Admits a new pending entry, choosing pressure victims; throws (reserving nothing) when it cannot fit. */
  private create(key: ExportKey, id: string, bytes: number, deadline: number): ExportRecord {
    if (Date.now() >= deadline) throw tcError('TC_ERR_TIMEOUT', `export ${id}: the request's deadline passed`, { details: { deadline } });
    const budgetBytes = this.options.budgetBytes;
    let admitted = 0;
    for (const r of this.records.values()) if (r.state !== 'draining') admitted += r.bytes;
    const victims = bytes > budgetBytes ? undefined : pickExportVictims(this.records.values(), admitted + bytes - budgetBytes, this.now());
    if (victims === undefined) {
      throw exportUnavailable('export_budget_exhausted', key, `${bytes} bytes do not fit the export budget (${budgetBytes} bytes)`, {
        bytes,
        budgetBytes,
        admittedBytes: admitted,
      });
    }
    const now = this.now();
    const record = new ExportRecord(key, bytes, ++this.generation, deadline, now, now + this.options.ttlMs);
    this.records.set(id, record);
    this.step('create', record, 'info', { bytes, evicting: victims.length });
    for (const victim of victims) void this.retireRecord(victim, 'pressure', { for: id });
    this.waitingRoom.push(record);
    this.admitWaiting();
    return record;
  }

  /** Starts the build of every waiting entry whose bytes fit next to what is still allocated. */
  private admitWaiting(): void {
    const waiting = this.waitingRoom;
    this.waitingRoom = [];
    for (const record of waiting) {
      if (record.state !== 'pending') continue;
      if (Date.now() >= record.buildDeadline) {
        const error = tcError('TC_ERR_TIMEOUT', `export ${record.id}: the deadline passed while waiting for room`, {
          details: { deadline: record.buildDeadline },
        });
        this.failPreparation(record, error);
      } else if (this.allocatedBytes() + record.bytes <= this.options.budgetBytes) {
        this.startBuild(record);
      } else {
        this.waitingRoom.push(record);
      }
    }
  }

  private allocatedBytes(): number {
    let n = 0;
    for (const r of this.records.values()) if (holdsBudget(r)) n += r.bytes;
    return n;
  }

  private startBuild(record: ExportRecord): void {
    record.building = true;
    this.log.debug({ ...record.logFields(), bytes: record.bytes }, 'export build started');
    let work: Promise<Buffer[]>;
    try {
      const key: ExportKey = { artifactId: record.artifactId, viewId: record.viewId, device: record.device };
      work = this.options.build(key, record.bytes, record.buildDeadline);
    } catch (error) {
      work = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    work.then(
      (segments) => this.buildDone(record, segments),
      (error: unknown) => this.buildFailed(record, error),
    );
  }

  private buildDone(record: ExportRecord, segments: Buffer[]): void {
    record.buildSettled = true;
    if (record.state !== 'pending') {
      record.checkIdle(); // retired while building: the retirement frees it
      return;
    }
    const problem = checkSegments(segments, record.bytes);
    if (problem !== undefined) {
      this.buildFailed(record, tcError('TC_ERR_INTERNAL', `export ${record.id}: the build returned ${problem}`));
      return;
    }
    const now = this.now();
    record.segments = Object.freeze([...segments]);
    record.state = 'ready';
    record.acceptingFetches = true;
    record.lastAccessAt = now;
    record.expiresAt = now + this.options.ttlMs;
    this.log.info({ ...record.logFields(), bytes: record.bytes, expiresAt: record.expiresAt }, 'export ready');
    const publish = this.options.publish;
    record.published = publish === undefined ? Promise.resolve() : this.runHook('publish', record, () => publish(record.view()));
    record.resolveReady();
    record.checkIdle();
  }

  private buildFailed(record: ExportRecord, error: unknown): void {
    record.buildSettled = true;
    if (record.state !== 'pending') {
      record.checkIdle();
      return;
    }
    this.failPreparation(record, error instanceof Error ? error : new Error(String(error)));
  }

  /** Removes a pending entry that will not become ready and rejects every prepare joined to it. */
  private failPreparation(record: ExportRecord, error: Error): void {
    if (this.records.get(record.id) === record) this.records.delete(record.id);
    record.freed = true;
    this.log.warn({ ...record.logFields(), err: error.message, code: (error as { code?: unknown }).code }, 'export preparation failed');
    record.rejectReady(error);
    this.admitWaiting();
  }

  private reuse(record: ExportRecord, detail: Record<string, unknown>): void {
    const now = this.now();
    record.lastAccessAt = now;
    record.expiresAt = now + this.options.ttlMs;
    this.step('reuse', record, 'debug', { ...detail, expiresAt: record.expiresAt });
  }

  /**
   * Ordered retirement: stop accepting fetches (a pending entry's prepares are rejected), withdraw the
   * route, wait for active fetches (and a build still writing) up to drainTimeoutMs, free, unregister,
   * remove. Past the bound the bytes are freed anyway with a warning: a stuck peer must not hold the
   * budget forever. A sender still writing keeps its own snapshot's Buffers alive (GC-safe); only the
   * budget stops counting them, so memory may briefly exceed the budget by such stragglers.
   */
  private retireRecord(record: ExportRecord, reason: RetireReason, detail: Record<string, unknown> = {}): Promise<void> {
    if (record.retirement !== undefined) return record.retirement;
    const wasPending = record.state === 'pending';
    record.state = 'draining';
    record.acceptingFetches = false;
    if (wasPending) {
      if (!record.building) record.freed = true;
      record.rejectReady(
        reason === 'shutdown'
          ? tcError('TC_ERR_SHUTTING_DOWN', `export ${record.id}: the export cache is closing`)
          : exportUnavailable('drain_attach_closed', record, `the entry is retiring (${reason}) before it was ready`),
      );
    }
    if (reason === 'pressure') this.step('eviction', record, 'info', { reason, ...detail });
    this.step('drain_start', record, 'info', { reason, activeFetches: record.activeFetches });
    record.retirement = this.drainAndFree(record, reason).catch((error: unknown) => {
      this.log.error({ ...record.logFields(), reason, err: String(error) }, 'export retirement failed');
    });
    return record.retirement;
  }

  private async drainAndFree(record: ExportRecord, reason: RetireReason): Promise<void> {
    const published = record.published;
    const withdraw = this.options.withdraw;
    if (published !== undefined) {
      await published;
      if (withdraw !== undefined) await this.runHook('withdraw', record, () => withdraw(record.view(), reason));
    }
    const drained = await within(record.whenIdle(), this.drainTimeoutMs);
    if (!drained) {
      this.log.warn(
        { ...record.logFields(), reason, activeFetches: record.activeFetches, buildRunning: !record.idle && record.activeFetches === 0 },
        'export drain timed out: freeing it anyway (a sender still writing keeps its own reference to the bytes)',
      );
    }
    this.step('drain_complete', record, 'info', { reason, drained, activeFetches: record.activeFetches });
    record.dropSegments();
    record.freed = true;
    this.admitWaiting();
    const unregister = this.options.unregister;
    if (published !== undefined && unregister !== undefined)
      await this.runHook('unregister', record, () => unregister(record.view(), reason));
    if (this.records.get(record.id) === record) this.records.delete(record.id);
    for (const [transferId, bound] of this.transfers) if (bound.record === record) this.transfers.delete(transferId);
    this.step('retire', record, 'info', { reason });
  }

  /** Runs a catalog hook bounded by drainTimeoutMs; a failure or a timeout is logged, never thrown. */
  private async runHook(name: 'publish' | 'withdraw' | 'unregister', record: ExportRecord, call: () => Promise<void>): Promise<void> {
    try {
      const done = await within(Promise.resolve().then(call), this.drainTimeoutMs);
      if (!done) this.log.warn({ ...record.logFields(), hook: name }, `export ${name} hook timed out; going on`);
    } catch (error) {
      this.log.warn({ ...record.logFields(), hook: name, err: String(error) }, `export ${name} hook failed; going on`);
    }
  }

  /** One lifecycle step: a structured log line and the event for metrics. */
  private step(name: ExportEventName, record: ExportRecord, level: 'info' | 'debug', detail: Record<string, unknown>): void {
    this.log[level]({ event: name, routeKind: 'derived_view_from_canonical', ...record.logFields(), ...detail }, `export ${name}`);
    try {
      this.options.onEvent?.(name, record.view(), detail);
    } catch (error) {
      this.log.warn({ event: name, ...record.logFields(), err: String(error) }, 'export event listener threw');
    }
  }
}

/** The entry's bytes count against the budget: a build may be writing them, or they are held until freed. */
function holdsBudget(r: ExportRecord): boolean {
  if (r.state === 'pending') return r.building && !r.freed;
  return !r.freed;
}

/** A function, so that TypeScript does not narrow `state` across an await. */
function isReady(r: ExportRecord): boolean {
  return r.state === 'ready';
}

/** Resolves true when `work` settles within `ms`, false after `ms`; rejects as `work` does. */
function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(false), ms);
    work.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** What is wrong with a build's segments, or undefined. */
function checkSegments(segments: unknown, bytes: number): string | undefined {
  if (!Array.isArray(segments)) return 'no segment list';
  let total = 0;
  for (const s of segments as unknown[]) {
    if (!Buffer.isBuffer(s)) return 'a segment that is not a Buffer';
    if (s.length > MAX_EXPORT_SEGMENT_BYTES) return `a segment of ${s.length} bytes (at most ${MAX_EXPORT_SEGMENT_BYTES})`;
    total += s.length;
  }
  return total === bytes ? undefined : `${total} bytes instead of ${bytes}`;
}

function badOption(name: string, value: unknown): Error {
  return tcError('TC_ERR_INVALID_ARGUMENT', `export cache: ${name} is out of range: ${String(value)}`, {
    details: { [name]: String(value) },
  });
}
