// The PostgreSQL connection shared by the catalog, the handshake store and the session metadata store: the pool
// of a parsed URL (its timeouts bounded by the call timeout), the 'error' handlers that keep a dropped
// connection from crashing the process, the once-only lost/restored log lines, the first connection with its
// setup, and one checked-out connection with failures as TC_ERR_BACKEND (the password redacted). Each user
// keeps its own statements, schema and log wording.

import pg from 'pg';
import { isTensorcastError } from '../../core/errors.js';
import { backendError } from '../catalog-checks.js';
import type { CatalogLog } from '../catalog-options.js';
import type { PostgresCatalogUrl } from './postgres-url.js';

/** Connections per process and user: calls are short; a few in parallel are plenty. */
const POOL_SIZE = 8;

/** The SQLSTATE of a driver error, if the server sent one. */
export const sqlState = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
};

/** True when the failure is about reaching the server, not about the statement. */
export const isConnectionFailure = (error: unknown): boolean => {
  const state = sqlState(error);
  return state === undefined || state.startsWith('08') || state.startsWith('57P');
};

/** How a user names its connection in the log. */
export interface PostgresConnectionLog {
  /** The log field that carries the redacted URL ('catalog', 'sessions'). */
  readonly field: string;
  /** The subject of the log lines: `<what> connection lost`, `<what> connection restored`. */
  readonly what: string;
}

/** Whether the server is reachable, as last seen; logs a loss once and the return once. */
export class PostgresConnectionState {
  #connected = true;
  /** Set once open succeeded: a failing open reports through its rejection only. */
  log: CatalogLog | undefined;

  constructor(
    private readonly url: PostgresCatalogUrl,
    private readonly names: PostgresConnectionLog,
  ) {}

  lost(error: unknown): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.log?.warn(
      { [this.names.field]: this.url.redacted, err: backendError('connection', this.url.redacted, error, this.url.password).message },
      `${this.names.what} connection lost`,
    );
  }

  restored(): void {
    if (this.#connected) return;
    this.#connected = true;
    this.log?.info({ [this.names.field]: this.url.redacted }, `${this.names.what} connection restored`);
  }
}

/** What openPostgresPool needs. */
export interface OpenPostgresPoolOptions {
  readonly url: PostgresCatalogUrl;
  /** Bounds connecting and each statement. */
  readonly callTimeoutMs: number;
  /** The server's `application_name` for these connections. */
  readonly applicationName: string;
  readonly names: PostgresConnectionLog;
  readonly log: CatalogLog | undefined;
  /** Runs once on the first connection (schema, migrations); a failure ends open. */
  readonly setup: (client: pg.PoolClient) => Promise<void>;
}

/** An open pool and its connection state. */
export interface PostgresConnection {
  readonly pool: pg.Pool;
  readonly state: PostgresConnectionState;
}

/**
 * Opens a pool on `url` and runs `setup` on its first connection.
 *
 * @throws TC_ERR_BACKEND (operation 'open') when the server cannot be reached within the call timeout,
 * refuses the credentials, or `setup` fails.
 */
export async function openPostgresPool(options: OpenPostgresPoolOptions): Promise<PostgresConnection> {
  const { url, callTimeoutMs } = options;
  const pool = new pg.Pool({
    connectionString: url.connectionString,
    max: POOL_SIZE,
    connectionTimeoutMillis: callTimeoutMs,
    idleTimeoutMillis: 30_000,
    // The server cancels a statement that runs too long; the client gives up on one whose answer never comes.
    statement_timeout: callTimeoutMs,
    query_timeout: callTimeoutMs + 1000,
    keepAlive: true,
    application_name: options.applicationName,
    options: `-c search_path=${url.schema}`,
  });
  const state = new PostgresConnectionState(url, options.names);
  // An idle connection the server drops emits 'error' on the pool; the pool discards it, nothing crashes.
  pool.on('error', (error) => state.lost(error));
  try {
    await withPostgresClient(pool, state, options.setup);
    state.log = options.log;
    return { pool, state };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw backendError('open', url.redacted, error, url.password);
  }
}

/**
 * Runs `fn` on one pooled connection. While it is checked out its 'error' events are handled here (pg-pool
 * drops its own listener meanwhile: a connection lost mid-transaction would otherwise kill the process).
 * A connection that emitted 'error', or whose failure is about reaching the server, is not given back to
 * the pool. Failures pass through unchanged (callers map them).
 */
async function withPostgresClient<T>(
  pool: pg.Pool,
  state: PostgresConnectionState,
  fn: (client: pg.PoolClient, drop: (reason: unknown) => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: unknown;
  const onError = (error: unknown): void => {
    broken = error;
    state.lost(error);
  };
  client.on('error', onError);
  try {
    return await fn(client, (reason) => {
      broken = reason;
    });
  } catch (error) {
    if (!isTensorcastError(error) && isConnectionFailure(error)) broken = error;
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken === undefined ? undefined : true);
  }
}

/**
 * Runs `fn` on one pooled connection (see withPostgresClient), in one transaction when `transaction` is set:
 * a failure rolls back (a connection whose rollback fails is not given back to the pool). Any failure
 * becomes TC_ERR_BACKEND for `op` (a tensorcast error passes through); a failure to reach the server is
 * logged as a lost connection, a success as its return.
 */
export async function postgresCall<T>(
  connection: PostgresConnection,
  url: PostgresCatalogUrl,
  op: string,
  transaction: boolean,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const { pool, state } = connection;
  try {
    const result = await withPostgresClient(pool, state, async (client, drop) => {
      if (!transaction) return fn(client);
      await client.query('BEGIN');
      try {
        const value = await fn(client);
        await client.query('COMMIT');
        return value;
      } catch (error) {
        await client.query('ROLLBACK').catch(drop);
        throw error;
      }
    });
    state.restored();
    return result;
  } catch (error) {
    if (!isTensorcastError(error) && isConnectionFailure(error)) state.lost(error);
    throw backendError(op, url.redacted, error, url.password);
  }
}
