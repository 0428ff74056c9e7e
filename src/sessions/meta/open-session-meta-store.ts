// Opens a session metadata store from its URL (docs/sessions.md "Metadata stores"): `memory`,
// `sqlite://<path>`, `redis://` / `rediss://` (`?prefix=`), `postgres://` / `postgresql://` (`?schema=`).
// Drivers load lazily, per backend.

import { tcError } from '../../core/errors.js';
import { redactUrl } from '../../catalog/catalog-checks.js';
import type { CatalogLog } from '../../catalog/catalog-options.js';
import type { SessionMetaStore } from './session-meta-store.js';

/** Options of {@link openSessionMetaStore}. */
export interface OpenSessionMetaStoreOptions {
  /** Connection lost / restored notes of the Redis and PostgreSQL stores. */
  readonly log?: CatalogLog;
  /** How long one Redis/PostgreSQL/SQLite call may wait before TC_ERR_BACKEND, in ms (default 5000). */
  readonly callTimeoutMs?: number;
  /** The memory store's clock (tests); the other stores use their engine's clock. */
  readonly now?: () => number;
}

/**
 * Opens the session metadata store named by `url`.
 *
 * @throws TC_ERR_CONFIG for an unknown scheme or a malformed URL; TC_ERR_BACKEND when the engine cannot be
 * opened or reached.
 * @example
 * const meta = await openSessionMetaStore('sqlite:///var/lib/tensorcast/sessions.db');
 * const shared = await openSessionMetaStore('redis://10.0.0.5:6379/0?prefix=prod:', { log });
 */
export async function openSessionMetaStore(url: string, options: OpenSessionMetaStoreOptions = {}): Promise<SessionMetaStore> {
  if (url === 'memory' || url === 'memory://') {
    const { MemorySessionMetaStore } = await import('./memory-session-meta-store.js');
    return new MemorySessionMetaStore(options.now === undefined ? {} : { now: options.now });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
  switch (scheme) {
    case 'sqlite': {
      const { SqliteSessionMetaStore } = await import('./sqlite-session-meta-store.js');
      return SqliteSessionMetaStore.open(
        url.slice('sqlite://'.length),
        options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs },
      );
    }
    case 'redis':
    case 'rediss': {
      const { RedisSessionMetaStore } = await import('./redis-session-meta-store.js');
      return RedisSessionMetaStore.open(url, clusterOptions(options));
    }
    case 'postgres':
    case 'postgresql': {
      const { PostgresSessionMetaStore } = await import('./postgres-session-meta-store.js');
      return PostgresSessionMetaStore.open(url, clusterOptions(options));
    }
    default:
      throw tcError(
        'TC_ERR_CONFIG',
        `session metadata URL '${redactUrl(url)}': scheme '${scheme || '(none)'}' is not supported (use memory, sqlite://<path>, redis://, rediss://, postgres:// or postgresql://)`,
        { details: { url: redactUrl(url) } },
      );
  }
}

function clusterOptions(options: OpenSessionMetaStoreOptions): { log?: CatalogLog; callTimeoutMs?: number } {
  return {
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.callTimeoutMs === undefined ? {} : { callTimeoutMs: options.callTimeoutMs }),
  };
}
