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
