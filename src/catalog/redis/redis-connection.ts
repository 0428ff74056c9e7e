// The Redis connection shared by the catalog, the handshake store and the session metadata store: the client
// of a parsed URL (no offline queue, capped reconnection backoff), the watchers that log a lost connection
// once and its return once, the first connection, one bounded call with failures as TC_ERR_BACKEND (the
// password redacted), and a bounded close. Each user keeps its own scripts, keys and log wording.

import { createClient, type RedisScripts } from 'redis';
import { backendError } from '../catalog-checks.js';
import type { CatalogLog } from '../catalog-options.js';
import type { RedisCatalogUrl } from './redis-url.js';

/** Reconnection backoff: 100 ms doubling to at most this, with jitter. */
const MAX_RECONNECT_DELAY_MS = 2000;

const reconnectDelay = (retries: number): number =>
  Math.round(Math.min(100 * 2 ** Math.min(retries, 10), MAX_RECONNECT_DELAY_MS) * (0.5 + Math.random() / 2));

const createRedisClient = <S extends RedisScripts>(url: RedisCatalogUrl, connectTimeoutMs: number, scripts: S, opened: () => boolean) =>
  createClient({
    socket: {
      host: url.host,
      port: url.port,
      // TLS checks the certificate against the host name (Node's default servername), with the system CAs.
      ...(url.tls ? { tls: true as const } : {}),
      connectTimeout: connectTimeoutMs,
      // Until the first connection succeeds a failed attempt ends open (false); afterwards the client retries for ever.
      reconnectStrategy: (retries: number): number | false => (opened() ? reconnectDelay(retries) : false),
    },
    ...(url.username === undefined ? {} : { username: url.username }),
    ...(url.password === undefined ? {} : { password: url.password }),
    database: url.database,
    // A call while the connection is down fails at once instead of waiting in a queue for the server.
    disableOfflineQueue: true,
    scripts,
  });

/** The client of a Redis user, with its scripts. */
export type RedisConnectionClient<S extends RedisScripts> = ReturnType<typeof createRedisClient<S>>;

/** How a user names its connection in the log. */
export interface RedisConnectionLog {
  /** The log field that carries the redacted URL ('catalog', 'sessions'). */
  readonly field: string;
  /** The subject of the log lines: `<what> connection lost`, `<what> connection restored`. */
  readonly what: string;
  /** The log, read at each event (undefined: nothing is logged). */
  readonly log: () => CatalogLog | undefined;
}

/** What openRedisConnection needs. */
export interface OpenRedisConnectionOptions<S extends RedisScripts> {
  readonly url: RedisCatalogUrl;
  /** Bounds the first connection, `check` and every later connection attempt. */
  readonly callTimeoutMs: number;
  readonly scripts: S;
  readonly names: RedisConnectionLog;
  /** Runs once connected, within the call timeout (a failure ends open). */
  readonly check?: (client: RedisConnectionClient<S>) => Promise<void>;
}

/**
 * Connects to the server of `url`. The first connection must succeed within the call timeout; after that, a
 * lost connection is re-established in the background and calls meanwhile fail fast.
 *
 * @throws TC_ERR_BACKEND (operation 'open') when the server cannot be reached or `check` fails.
 */
export async function openRedisConnection<S extends RedisScripts>(
  options: OpenRedisConnectionOptions<S>,
): Promise<RedisConnectionClient<S>> {
  const { url, callTimeoutMs } = options;
  let opened = false;
  const client = createRedisClient(url, callTimeoutMs, options.scripts, () => opened);
  watchRedisConnection(client, url, options.names);
  try {
    await withDeadline(client.connect(), callTimeoutMs);
    opened = true;
    if (options.check !== undefined) await withDeadline(options.check(client), callTimeoutMs);
    return client;
  } catch (error) {
    if (client.isOpen) client.destroy();
    throw backendError('open', url.redacted, error, url.password);
  }
}

/** An 'error' never reaches the process; a lost connection is logged once, its return once. */
function watchRedisConnection<S extends RedisScripts>(
  client: RedisConnectionClient<S>,
  url: RedisCatalogUrl,
  names: RedisConnectionLog,
): void {
  const where = { [names.field]: url.redacted };
  let connected = true;
  client.on('error', (error: unknown) => {
    if (!connected) return;
    connected = false;
    names
      .log()
      ?.warn({ ...where, err: backendError('connection', url.redacted, error, url.password).message }, `${names.what} connection lost`);
  });
  client.on('ready', () => {
    if (connected) return;
    connected = true;
    names.log()?.info(where, `${names.what} connection restored`);
  });
}

/**
 * Runs one call, bounded by `timeoutMs`: any failure, or no answer in time, becomes TC_ERR_BACKEND for `op`.
 * node-redis' command timeout stops counting once the command is written: a server that stops answering
 * without resetting the connection (a partition, a stopped process) would hold the call for ever. Its
 * answer, if it ever comes, is matched to this command and dropped.
 */
export async function redisCall<T>(op: string, url: RedisCatalogUrl, timeoutMs: number, run: () => Promise<T>): Promise<T> {
  try {
    return await withDeadline(run(), timeoutMs);
  } catch (error) {
    throw backendError(op, url.redacted, error, url.password);
  }
}

/**
 * Closes the connection; calls in flight finish first when the server answers within `timeoutMs`, after
 * which the connection is destroyed (a server that stopped answering would otherwise hold close for ever).
 */
export async function closeRedisConnection<S extends RedisScripts>(client: RedisConnectionClient<S>, timeoutMs: number): Promise<void> {
  if (!client.isOpen) return;
  if (!client.isReady) {
    client.destroy();
    return;
  }
  await withDeadline(client.close(), timeoutMs).catch(() => {
    if (client.isOpen) client.destroy();
  });
}

/** `promise`, or a rejection after `ms` milliseconds. */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
