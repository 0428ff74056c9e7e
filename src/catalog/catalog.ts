// The Catalog interface: cluster metadata (daemons, artifacts and their indexes, keys, replicas) on an
// existing engine. Backends: sqlite/ (embedded default); redis/ and postgres/ come with the cluster work.

/** A daemon known to the catalog. */
export interface DaemonRecord {
  readonly daemonId: string;
  readonly controlUrl: string;
  readonly dataAddress: string;
  /** Unix milliseconds of the last heartbeat. */
  readonly heartbeatAt: number;
}

/** An artifact: identity, size and canonical index. */
export interface ArtifactRecord {
  readonly artifactId: string;
  readonly indexHash: string;
  readonly dataHash: string;
  readonly totalBytes: number;
  readonly tensorCount: number;
  /** The canonical index (identity JSON with metadata), see docs/formats.md. */
  readonly indexJson: string;
  /** Non-weight files kept with the artifact (config.json, tokenizer files). */
  readonly files: readonly string[];
  readonly createdAt: number;
}

/** A key bound to an artifact. Every rebinding increments the version. */
export interface KeyBinding {
  readonly key: string;
  readonly artifactId: string;
  readonly version: number;
  readonly updatedAt: number;
}

/** A materialized copy of an artifact (canonical) or a view, held by a daemon. */
export interface ReplicaRecord {
  readonly artifactId: string;
  /** Undefined for the canonical artifact. */
  readonly viewId: string | undefined;
  readonly daemonId: string;
  readonly tier: 'memory' | 'shm' | 'disk';
  readonly bytes: number;
}

/**
 * Cluster metadata. Every method may throw TC_ERR_BACKEND when the engine fails.
 *
 * @example
 * const b = await catalog.bindKey('model:llama:v1', id, null); // create only
 * await catalog.bindKey('model:llama:v1', id2, b.version);     // compare-and-swap
 */
export interface Catalog {
  /** Registers or refreshes a daemon. */
  upsertDaemon(daemon: DaemonRecord): Promise<void>;
  listDaemons(): Promise<DaemonRecord[]>;
  /** Stores an artifact; true when it was new, false when it existed already (idempotent). */
  putArtifact(artifact: ArtifactRecord): Promise<boolean>;
  getArtifact(artifactId: string): Promise<ArtifactRecord | undefined>;
  listArtifacts(): Promise<ArtifactRecord[]>;
  /**
   * Binds `key` to `artifactId`. `expectedVersion`: undefined binds unconditionally, null only when the key
   * does not exist yet, a number only when the key is at that version.
   *
   * @throws TC_ERR_CONFLICT when the expectation does not hold; TC_ERR_NOT_FOUND for an unknown artifact.
   */
  bindKey(key: string, artifactId: string, expectedVersion?: number | null): Promise<KeyBinding>;
  resolveKey(key: string): Promise<KeyBinding | undefined>;
  listKeys(): Promise<KeyBinding[]>;
  /** Removes a key; with `expectedVersion`, only at that version. @throws TC_ERR_CONFLICT */
  deleteKey(key: string, expectedVersion?: number): Promise<boolean>;
  putReplica(replica: ReplicaRecord): Promise<void>;
  removeReplica(replica: Pick<ReplicaRecord, 'artifactId' | 'viewId' | 'daemonId' | 'tier'>): Promise<void>;
  listReplicas(artifactId?: string): Promise<ReplicaRecord[]>;
  /**
   * Removes every replica row of `daemonId` in one of `tiers` (a daemon starting again drops the memory and
   * shm rows its killed predecessor left). Resolves with the number of rows removed.
   */
  removeDaemonReplicas(daemonId: string, tiers: readonly ReplicaRecord['tier'][]): Promise<number>;
  close(): Promise<void>;
}
