// The route kinds a load can take (docs/architecture.md section 5), in order of preference, and the closed
// set of reasons for falling back from one to the next. Every load result, END frame, lease answer and
// metric names one of these; the code that served the load says which.

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
 * What a caller may ask for: `auto` (follow the order of preference), or one remote route forced (for
 * diagnosis and benchmarks; `derived_view` is `derived_view_from_canonical`).
 */
export const ROUTE_CHOICES = ['auto', 'resident_view', 'derived_view', 'canonical'] as const;
/** A route the caller asks for. */
export type RouteChoice = (typeof ROUTE_CHOICES)[number];

/**
 * Why a load fell back from a preferred route, a closed set:
 * - `view_probe_unavailable`: the daemon the catalog named for a resident view no longer had it;
 * - `source_prepare_unavailable`: the source could not be asked to prepare the view (unreachable, refused);
 * - `export_budget_exhausted`: the source's export cache had no room and nothing it could evict;
 * - `entry_pending`: the source's export entry was still being prepared when the fetch began;
 * - `drain_attach_closed`: the source's export entry was being retired and refused new fetches;
 * - `source_failed`: a source failed mid-transfer (the load reselected);
 * - `no_source`: no live daemon holds the bytes the route needs.
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
/** A reason from {@link FALLBACK_REASONS}. */
export type FallbackReason = (typeof FALLBACK_REASONS)[number];
