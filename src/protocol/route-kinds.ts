// The route kinds a load can take (docs/architecture.md section 5), in order of preference. Every load
// result, END frame, lease answer and metric names one of these; the code that served the load says which.

/** Route kinds, most preferred first. */
export const ROUTE_KINDS = ['local', 'resident_view', 'derived_view_from_canonical', 'canonical'] as const;

/**
 * How a load reached its bytes: `local` (a replica or the artifact's files on the serving daemon),
 * `resident_view` (a remote daemon already held the dense view), `derived_view_from_canonical` (a remote
 * daemon prepared the view from its canonical bytes), `canonical` (canonical ranges fetched and
 * materialized here).
 */
export type RouteKind = (typeof ROUTE_KINDS)[number];

/**
 * Why a load fell back from a preferred route to a later one: a closed set, each with its own counter
 * (docs/architecture.md section 5). Running out of the caller's deadline is never a fallback reason: it is
 * TC_ERR_TIMEOUT.
 *
 * - `view_probe_unavailable`: asking the catalog or a peer whether a daemon holds the dense view failed.
 * - `source_prepare_unavailable`: the source could not be asked to prepare the view (unreachable, refused,
 *   or the export vanished between prepare and fetch).
 * - `export_budget_exhausted`: the source's export cache has no room for the view, even after evicting
 *   every idle entry it may evict.
 * - `entry_pending`: the source's export entry was still being prepared when a fetch tried to attach.
 * - `drain_attach_closed`: the source's export entry is retiring and accepts no new fetches.
 * - `source_failed`: the chosen source failed mid-transfer and no other source was left to reselect.
 * - `no_source`: no live daemon holds the view or the canonical bytes the route needs.
 */
export const FALLBACK_REASONS = [
  'view_probe_unavailable',
  'source_prepare_unavailable',
  'export_budget_exhausted',
  'entry_pending',
  'drain_attach_closed',
  'source_failed',
  'no_source',
] as const;

/** One reason of {@link FALLBACK_REASONS}. */
export type FallbackReason = (typeof FALLBACK_REASONS)[number];
