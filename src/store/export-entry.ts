// One entry of the source daemon's derived-view export cache: its key, its public read-only view, the
// mutable record the cache keeps behind it, and the coded error the cache throws when it cannot serve.

import { tcError, type ErrorDetails, type TensorcastError } from '../core/errors.js';
import type { FallbackReason } from '../protocol/route-kinds.js';

/** Life of an export entry: being prepared, serving fetches, retiring (refuses new fetches). */
export type ExportState = 'pending' | 'ready' | 'draining';

/** Every state, in life order (for stats and metrics). */
export const EXPORT_STATES: readonly ExportState[] = ['pending', 'ready', 'draining'];

/** What an export is of: one dense view of one artifact on one device (`cpu` for now). */
export interface ExportKey {
  readonly artifactId: string;
  readonly viewId: string;
  readonly device: string;
}

/**
 * A read-only snapshot of an export entry, as it was when a cache call returned it. `segments` are the
 * view's bytes once ready; a fetch keeps the snapshot it got from `beginFetch` until it ends, so the
 * Buffers it sends from stay referenced (and safe from GC) even if the cache frees the entry.
 */
export interface ExportEntry {
  /** `${artifactId}/${viewId}/${device}` */
  readonly id: string;
  readonly artifactId: string;
  readonly viewId: string;
  readonly device: string;
  readonly bytes: number;
  /** Unique per cache and increasing: a later entry of the same key has a larger generation. */
  readonly generation: number;
  readonly state: ExportState;
  readonly activeFetches: number;
  readonly acceptingFetches: boolean;
  /** Unix ms (the cache's clock) of the last data-plane use. */
  readonly lastAccessAt: number;
  /** Unix ms (the cache's clock) after which an idle entry is retired. */
  readonly expiresAt: number;
  /** The view's bytes in order, each segment at most {@link MAX_EXPORT_SEGMENT_BYTES}; empty until ready. */
  readonly segments: readonly Buffer[];
}

/** Lifecycle events, one per step (metrics and structured logs hang off these). */
export type ExportEventName =
  'create' | 'reuse' | 'ttl_refresh' | 'fetch_begin' | 'fetch_end' | 'eviction' | 'drain_start' | 'drain_complete' | 'retire';

/** Why an entry is retired. */
export type RetireReason = 'ttl_expired' | 'pressure' | 'drain' | 'shutdown';

/** Why the cache cannot serve: three route fallback reasons, plus `not_found` (no such entry). */
export type ExportUnavailableReason =
  Extract<FallbackReason, 'export_budget_exhausted' | 'entry_pending' | 'drain_attach_closed'> | 'not_found';

/** Every {@link ExportUnavailableReason}. */
export const EXPORT_UNAVAILABLE_REASONS: readonly ExportUnavailableReason[] = [
  'export_budget_exhausted',
  'entry_pending',
  'drain_attach_closed',
  'not_found',
];

/** Largest segment a build may return: one Buffer never exceeds 1 GiB. */
export const MAX_EXPORT_SEGMENT_BYTES = 2 ** 30;

/**
 * The TC_ERR_EXPORT_UNAVAILABLE error for `reason`, naming the entry.
 *
 * @example throw exportUnavailable('entry_pending', key, 'the export is still being prepared');
 */
export function exportUnavailable(
  reason: ExportUnavailableReason,
  key: ExportKey,
  why: string,
  details: ErrorDetails = {},
): TensorcastError {
  return tcError('TC_ERR_EXPORT_UNAVAILABLE', `export ${exportId(key)}: ${why}`, {
    details: { ...details, reason, artifactId: key.artifactId, viewId: key.viewId, device: key.device },
  });
}

/**
 * The id of the entry for `key`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT when a part is empty or contains `/` (the id would be ambiguous).
 */
export function exportId(key: ExportKey): string {
  for (const part of ['artifactId', 'viewId', 'device'] as const) {
    const value: unknown = key[part];
    if (typeof value !== 'string' || value === '' || value.includes('/')) {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `export key: ${part} must be a non-empty string without '/'`, {
        details: { [part]: String(value) },
      });
    }
  }
  return `${key.artifactId}/${key.viewId}/${key.device}`;
}

const NO_SEGMENTS: readonly Buffer[] = Object.freeze([]);

/**
 * The cache's mutable record behind an {@link ExportEntry}; only the cache changes it. A pending record
 * owns one promise every prepare of its key waits on.
 */
export class ExportRecord implements ExportKey {
  readonly id: string;
  readonly artifactId: string;
  readonly viewId: string;
  readonly device: string;
  state: ExportState = 'pending';
  activeFetches = 0;
  acceptingFetches = false;
  segments: readonly Buffer[] = NO_SEGMENTS;
  /** The build was called (it may hold memory from then until it settles). */
  building = false;
  buildSettled = false;
  /** The bytes no longer count against the budget. */
  freed = false;
  /** Why the preparation failed (a joined prepare tells a build timeout from its own). */
  failure: unknown = undefined;
  /** Resolves when the publish hook has settled (retirement withdraws only after it). */
  published: Promise<void> | undefined = undefined;
  retirement: Promise<void> | undefined = undefined;
  /** Settles when the preparation does. Never rejects unhandled: a handler is attached at creation. */
  readonly ready: Promise<ExportEntry>;
  private settle: { resolve: (e: ExportEntry) => void; reject: (error: unknown) => void } | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(
    key: ExportKey,
    readonly bytes: number,
    readonly generation: number,
    /** The deadline of the prepare that created the entry: the build's own bound. */
    readonly buildDeadline: number,
    public lastAccessAt: number,
    public expiresAt: number,
  ) {
    this.id = exportId(key);
    this.artifactId = key.artifactId;
    this.viewId = key.viewId;
    this.device = key.device;
    this.ready = new Promise<ExportEntry>((resolve, reject) => (this.settle = { resolve, reject }));
    this.ready.catch(() => undefined);
  }

  /** A frozen snapshot for callers. */
  view(): ExportEntry {
    return Object.freeze({
      id: this.id,
      artifactId: this.artifactId,
      viewId: this.viewId,
      device: this.device,
      bytes: this.bytes,
      generation: this.generation,
      state: this.state,
      activeFetches: this.activeFetches,
      acceptingFetches: this.acceptingFetches,
      lastAccessAt: this.lastAccessAt,
      expiresAt: this.expiresAt,
      segments: this.segments,
    });
  }

  /** Fields every structured log line about the entry carries. */
  logFields(): Record<string, string | number> {
    return { artifactId: this.artifactId, viewId: this.viewId, device: this.device, generation: this.generation };
  }

  /** Ends the preparation: every prepare waiting on it resolves. */
  resolveReady(): void {
    this.settle?.resolve(this.view());
    this.settle = undefined;
  }

  /** Ends the preparation in failure: every prepare waiting on it rejects with `error`. */
  rejectReady(error: unknown): void {
    if (this.settle === undefined) return;
    this.failure = error;
    this.settle.reject(error);
    this.settle = undefined;
  }

  /** Drops the reference to the bytes (snapshots handed out keep theirs). */
  dropSegments(): void {
    this.segments = NO_SEGMENTS;
  }

  /** Nothing uses the memory any more: no active fetch, and no build still writing into it. */
  get idle(): boolean {
    return this.activeFetches === 0 && (!this.building || this.buildSettled);
  }

  /** Resolves once {@link idle} holds. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Wakes {@link whenIdle} waiters if the record became idle. */
  checkIdle(): void {
    if (!this.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }
}
