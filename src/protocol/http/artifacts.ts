// Contracts of the artifact routes: GET /v1/artifacts, GET /v1/artifacts/:id (with the canonical index),
// GET /v1/artifacts/:id/placement, GET /v1/artifacts/:id/files/:name.

import type { RouteKind } from '../route-kinds.js';

/** One artifact in GET /v1/artifacts, with its keys and the replicas the catalog knows. */
export interface ArtifactSummary {
  readonly artifactId: string;
  readonly totalBytes: number;
  readonly tensorCount: number;
  /** Non-weight files kept with the artifact (config.json, tokenizer files). */
  readonly files: readonly string[];
  readonly createdAt: number;
  readonly keys: readonly { readonly key: string; readonly version: number }[];
  readonly replicas: readonly {
    readonly viewId: string | null;
    readonly tier: string;
    readonly bytes: number;
    readonly daemonId: string;
  }[];
  /** For a lazy artifact this daemon keeps: where its bytes are, and its content id once verified. */
  readonly lazy?: LazyInfo;
}

/** What a daemon tells about a lazy artifact it keeps (never the credentials). */
export interface LazyInfo {
  /** The connector URL, credentials redacted. */
  readonly source: string;
  /** The remote objects the bytes come from, with the sizes and etags seen at import. */
  readonly objects: readonly { readonly key: string; readonly size: number; readonly etag: string }[];
  /** The content id (`tc1:...`) `tensorcast verify` computed, when it ran. */
  readonly contentId: string | null;
  readonly verifiedAt: number | null;
}

/**
 * POST /v1/artifacts/:id/verify: hash every canonical byte (a lazy artifact's streamed from its connector).
 * With `accept: application/x-ndjson`, a progress stream ending in this.
 */
export interface VerifyResponse {
  readonly artifactId: string;
  readonly lazy: boolean;
  /** The content id of the bytes hashed (`tc1:...`): what a full import of them is called. */
  readonly contentId: string;
  readonly dataHash: string;
  readonly totalBytes: number;
  /** Stored artifacts: whether the bytes still give the artifact id. Lazy ones: null (a lazy id is not a content id). */
  readonly matches: boolean | null;
}

/** GET /v1/artifacts. */
export interface ArtifactList {
  readonly artifacts: readonly ArtifactSummary[];
}

/** GET /v1/artifacts/:id: identity and the canonical index (docs/formats.md). */
export interface ArtifactDetail {
  readonly artifactId: string;
  readonly indexHash: string;
  readonly dataHash: string;
  readonly totalBytes: number;
  readonly tensorCount: number;
  readonly files: readonly string[];
  readonly index: object;
}

/**
 * GET /v1/artifacts/:id/placement: where the artifact's immutable files lie on the daemon's host, for
 * same-host clients that read them in place (transport `files`).
 */
export interface Placement {
  readonly artifactId: string;
  /** The route a files-transport load of this artifact takes (the files are local to this daemon). */
  readonly route: RouteKind;
  readonly dir: string;
  readonly shards: readonly { readonly file: string; readonly bytes: number }[];
  /** Per tensor: name, shard number, byte position in the shard file. */
  readonly tensors: readonly (readonly [string, number, number])[];
}

/** The path of an artifact's route. */
export const artifactPath = (artifactId: string, tail = ''): string => `/v1/artifacts/${encodeURIComponent(artifactId)}${tail}`;
