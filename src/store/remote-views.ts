// What the view service needs from the routing layer to serve artifacts this daemon does not store: their
// canonical index (from the catalog), and the bytes of a view window pulled from other daemons. Defined
// here, implemented in src/routing/ (above store), wired by the daemon.

import type { CanonicalIndex } from '../layout/canonical-index.js';
import type { ByteRangeProgram } from '../layout/program.js';
import type { NormalizedView } from '../layout/view.js';
import type { FallbackReason, RouteChoice, RouteKind } from '../protocol/route-kinds.js';

/** An artifact known to the cluster but not stored here. */
export interface RemoteArtifact {
  readonly artifactId: string;
  readonly index: CanonicalIndex;
  /** Non-weight files kept with the artifact (config.json, tokenizer files). */
  readonly files: readonly string[];
}

/**
 * What one request learned while bytes were produced for it: filled in by whoever produced them (the
 * routing layer for remote routes), read back into the END frame.
 */
export interface FillContext {
  /** Bytes pulled from other daemons for this request. */
  wireBytes: number;
  /** Source bytes read to produce this request's bytes (canonical bytes for the canonical route). */
  readBytes: number;
  route?: RouteKind;
  fallback?: FallbackReason;
  sourceDaemon?: string;
}

/** A fresh, empty {@link FillContext}. */
export const newFillContext = (): FillContext => ({ wireBytes: 0, readBytes: 0 });

/** One window of a view to pull from other daemons. */
export interface RemoteFillRequest {
  readonly artifactId: string;
  readonly view: NormalizedView;
  readonly program: ByteRangeProgram;
  /** Length of the artifact's canonical byte space (the index's total). */
  readonly canonicalBytes: number;
  readonly choice: RouteChoice;
  /** Output byte range `[start, end)` of the view. */
  readonly start: number;
  readonly end: number;
  /** Unix ms: the caller's deadline. */
  readonly deadline: number;
}

/** The routing layer, as the view service sees it. */
export interface RemoteViews {
  /** The index of an artifact another daemon stores. @throws TC_ERR_NOT_FOUND when the catalog has no such artifact */
  artifact(artifactId: string): Promise<RemoteArtifact>;
  /** A non-weight file of an artifact another daemon stores (config.json, tokenizer files). @throws TC_ERR_NOT_FOUND */
  file(artifactId: string, name: string): Promise<Buffer>;
  /**
   * Fills `dest` (exactly `end - start` bytes) with the window from other daemons, by the route `choice`
   * allows; records route, fallback, source and bytes moved in `ctx`.
   *
   * @throws TC_ERR_TIMEOUT when the deadline runs out (never a late fallback); TC_ERR_UNAVAILABLE when no
   *   source is left; the source's error when it is not one a fallback can fix (TC_ERR_AUTH, ...)
   */
  fill(request: RemoteFillRequest, dest: Uint8Array, ctx: FillContext): Promise<void>;
}
