// Which daemons can serve a view this daemon lacks, best first: pure functions over what the catalog lists
// (daemons with their heartbeats, replica rows with their tiers and active-fetch counters).

import type { DaemonRecord, ListedReplica, ReplicaTier } from '../catalog/catalog.js';

/** A daemon that holds usable bytes, with the replica row that says so. */
export interface SourceCandidate {
  readonly daemon: DaemonRecord;
  readonly replica: ListedReplica;
}

/** Tiers a dense view can be fetched from as it is (`resident` mode on the source). */
const RESIDENT_TIERS: readonly ReplicaTier[] = ['memory', 'export'];
/**
 * Preference among tiers: a memory replica first (a destination that pulled the view spreads the load off the
 * daemon storing the artifact), then an export, then shared memory, then disk.
 */
const TIER_RANK: Record<ReplicaTier, number> = { memory: 0, export: 1, shm: 2, disk: 3 };

/** What the selection needs to know besides the catalog's rows. */
export interface SelectionContext {
  /** This daemon (never its own source). */
  readonly selfId: string;
  readonly now: number;
  /** A daemon silent for longer than this is not routed to (ms). */
  readonly daemonTtlMs: number;
  /** Daemons dropped for this load (they failed it). */
  readonly excluded: ReadonlySet<string>;
}

/** True when `d` is a live peer: up, heard from within the TTL, not this daemon, not excluded. */
export function isLivePeer(d: DaemonRecord, ctx: SelectionContext): boolean {
  return d.daemonId !== ctx.selfId && d.state === 'up' && ctx.now - d.heartbeatAt <= ctx.daemonTtlMs && !ctx.excluded.has(d.daemonId);
}

function candidates(
  daemons: readonly DaemonRecord[],
  replicas: readonly ListedReplica[],
  ctx: SelectionContext,
  accept: (r: ListedReplica) => boolean,
): SourceCandidate[] {
  const live = new Map(daemons.filter((d) => isLivePeer(d, ctx)).map((d) => [d.daemonId, d]));
  const best = new Map<string, SourceCandidate>();
  for (const replica of replicas) {
    const daemon = live.get(replica.daemonId);
    if (daemon === undefined || replica.state !== 'published' || !accept(replica)) continue;
    const seen = best.get(daemon.daemonId);
    if (seen === undefined || compare({ daemon, replica }, seen) < 0) best.set(daemon.daemonId, { daemon, replica });
  }
  return [...best.values()].sort(compare);
}

/** Tier first, then fewest active fetches, then daemon id (a stable order). */
function compare(a: SourceCandidate, b: SourceCandidate): number {
  return (
    TIER_RANK[a.replica.tier] - TIER_RANK[b.replica.tier] ||
    a.replica.activeFetches - b.replica.activeFetches ||
    (a.daemon.daemonId < b.daemon.daemonId ? -1 : a.daemon.daemonId > b.daemon.daemonId ? 1 : 0)
  );
}

/** Daemons holding the dense view `viewId` in memory (a replica or an export), best first. */
export function residentSources(
  daemons: readonly DaemonRecord[],
  replicas: readonly ListedReplica[],
  viewId: string | undefined,
  ctx: SelectionContext,
): SourceCandidate[] {
  return candidates(daemons, replicas, ctx, (r) => r.viewId === viewId && RESIDENT_TIERS.includes(r.tier));
}

/**
 * Daemons storing the artifact (its canonical bytes on disk), best first: they can derive any view from
 * them, or stream canonical ranges.
 */
export function canonicalSources(
  daemons: readonly DaemonRecord[],
  replicas: readonly ListedReplica[],
  ctx: SelectionContext,
): SourceCandidate[] {
  return candidates(daemons, replicas, ctx, (r) => r.viewId === undefined && r.tier === 'disk');
}
