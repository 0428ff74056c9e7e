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
