// The Catalog interface: cluster metadata (daemons, artifacts and their indexes, keys, replicas with their
// active-fetch counters) on an existing engine. Backends: sqlite/ (embedded default), redis/ and postgres/
// (a cluster). Liveness, atomicity and durability come from the engine: no home-made consensus.

/** A daemon's state as it reports it: `up` (serving), `draining` (finishing work, not to be routed to). */
export type DaemonState = 'up' | 'draining';

/** A daemon known to the catalog. */
export interface DaemonRecord {
  /** Stable id, kept in the daemon's data directory (survives restarts). */
  readonly daemonId: string;
  /** Control API URL other daemons use (built from the advertised host). */
  readonly controlUrl: string;
  /** Data-plane address other daemons use, HOST:PORT (built from the advertised host). */
  readonly dataAddress: string;
  /** The host name or address the daemon advertises to its peers (--advertise). */
  readonly advertiseHost: string;
  readonly state: DaemonState;
  /** Unix milliseconds of the last heartbeat. A daemon silent for longer than the daemon TTL is not routed to. */
  readonly heartbeatAt: number;
}

/** Where a replica's bytes sit: `export` is a derived-view export in the source's export cache (memory). */
export type ReplicaTier = 'memory' | 'export' | 'shm' | 'disk';

/** `published`: routable; `retiring`: being withdrawn (refuses new fetches), not routed to. */
export type ReplicaState = 'published' | 'retiring';

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
  readonly tier: ReplicaTier;
  readonly bytes: number;
  /** Default `published` when put. */
  readonly state?: ReplicaState;
}

/** What identifies one replica row. */
export type ReplicaKey = Pick<ReplicaRecord, 'artifactId' | 'viewId' | 'daemonId' | 'tier'>;

/** A replica row as listed: with its state and its active-fetch counter. */
export interface ListedReplica extends ReplicaRecord {
  readonly state: ReplicaState;
  /** Fetches from this replica in flight (destinations count up before a fetch and down after it). */
  readonly activeFetches: number;
}

/**
 * Cluster metadata. Every method may throw TC_ERR_BACKEND when the engine fails.
 *
 * @example
 * const b = await catalog.bindKey('model:llama:v1', id, null); // create only
 * await catalog.bindKey('model:llama:v1', id2, b.version);     // compare-and-swap
 */
export interface Catalog {
  /** Registers or refreshes a daemon (a heartbeat is an upsert with a new heartbeatAt). */
  upsertDaemon(daemon: DaemonRecord): Promise<void>;
  /** Every daemon ever registered, ordered by id; callers judge liveness from heartbeatAt and state. */
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
  /**
   * Registers a replica, or updates its bytes and state (default `published`). An existing row keeps its
   * active-fetch counter.
   */
  putReplica(replica: ReplicaRecord): Promise<void>;
  /** Sets the state of a replica row; false when there is no such row. */
  setReplicaState(replica: ReplicaKey, state: ReplicaState): Promise<boolean>;
  removeReplica(replica: ReplicaKey): Promise<void>;
  /** Replica rows (of one artifact, or all), ordered by artifact id, view id ('' first), daemon id, tier. */
  listReplicas(artifactId?: string): Promise<ListedReplica[]>;
  /**
   * Atomically adds `delta` (+1 before a fetch, -1 after) to a replica's active-fetch counter, never going
   * below zero; resolves with the new value, or undefined when there is no such row (nothing is created).
   */
  adjustReplicaFetches(replica: ReplicaKey, delta: number): Promise<number | undefined>;
  /**
   * Removes every replica row of `daemonId` in one of `tiers` (a daemon starting again drops the memory and
   * shm rows its killed predecessor left). Resolves with the number of rows removed.
   */
  removeDaemonReplicas(daemonId: string, tiers: readonly ReplicaTier[]): Promise<number>;
  close(): Promise<void>;
}
