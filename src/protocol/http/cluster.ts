// Contract of GET /v1/cluster: the daemons of the cluster and, per artifact, the replicas by daemon and kind.

/** One daemon as the catalog lists it. */
export interface ClusterDaemon {
  readonly daemonId: string;
  readonly controlUrl: string;
  readonly dataAddress: string;
  readonly advertiseHost: string;
  readonly state: 'up' | 'draining';
  /** Heard from within the daemon TTL and up. */
  readonly alive: boolean;
  /** Unix ms of the last heartbeat. */
  readonly heartbeatAt: number;
}

/** One replica row. `kind`: `canonical` (the stored artifact), `view` (a dense view replica), `export`. */
export interface ClusterReplica {
  readonly daemonId: string;
  readonly kind: 'canonical' | 'view' | 'export';
  readonly viewId: string | null;
  readonly tier: string;
  readonly bytes: number;
  readonly state: 'published' | 'retiring';
  readonly activeFetches: number;
}

/** GET /v1/cluster. */
export interface ClusterInfo {
  /** The daemon that answered. */
  readonly self: string;
  /** The catalog the daemon uses, without credentials, and whether it answers. */
  readonly catalog: { readonly url: string; readonly status: 'ok' | 'unavailable' };
  readonly daemonTtlMs: number;
  readonly daemons: readonly ClusterDaemon[];
  readonly artifacts: readonly {
    readonly artifactId: string;
    readonly keys: readonly string[];
    readonly replicas: readonly ClusterReplica[];
  }[];
}
