// Contracts of the system routes: GET /healthz, GET /v1/info, GET /v1/replicas.

/** GET /healthz (no token needed). */
export interface HealthInfo {
  readonly status: 'ok' | 'draining';
  /** Whether the catalog answers: while `unavailable`, the daemon serves what it holds and retries. */
  readonly catalog: 'ok' | 'unavailable';
}

/** GET /v1/info: who the daemon is and where its data plane listens. */
export interface DaemonInfo {
  readonly daemonId: string;
  readonly version: string;
  /** host:port of the data plane. */
  readonly dataAddress: string;
  readonly shmDir: string;
  readonly memoryBudget: number;
  readonly memoryUsed: number;
  readonly importRoots: readonly string[];
  /** The handshake listener's URL (`serve --handshake-listen`), or null when the daemon runs none. */
  readonly handshakeUrl: string | null;
}

/** One replica the daemon holds (GET /v1/replicas). */
export interface ReplicaInfo {
  readonly artifactId: string;
  /** null for the canonical artifact. */
  readonly viewId: string | null;
  readonly tier: string;
  readonly bytes: number;
  /** Readers holding it now. */
  readonly readers: number;
}

/** GET /v1/replicas. */
export interface ReplicaList {
  readonly replicas: readonly ReplicaInfo[];
}
