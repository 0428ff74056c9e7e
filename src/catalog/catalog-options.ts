// What opening a catalog accepts besides its URL: a logger for connection events of the cluster backends,
// and how long one call may wait for the engine.

/** The part of a pino logger the catalogs use (connection lost / restored). */
export interface CatalogLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** Options of openCatalog and of the cluster backends' `open`. */
export interface OpenCatalogOptions {
  /** Receives one warning when the connection to the engine is lost and one note when it is back. */
  readonly log?: CatalogLog;
  /**
   * How long one call may wait for the engine (Redis, PostgreSQL) before it fails with TC_ERR_BACKEND, in
   * milliseconds; also bounds connecting. Default 5000.
   */
  readonly callTimeoutMs?: number;
}

/** Default of {@link OpenCatalogOptions.callTimeoutMs}. */
export const DEFAULT_CALL_TIMEOUT_MS = 5000;
