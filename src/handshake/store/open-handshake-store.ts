// Opens the store behind a handshake listener from a catalog URL: none or `memory` -> in memory,
// `redis://` / `rediss://` -> Redis, `postgres://` / `postgresql://` -> PostgreSQL. Drivers load lazily.

import { tcError } from '../../core/errors.js';
import { redactUrl } from '../../catalog/catalog-checks.js';
import type { CatalogLog } from '../../catalog/catalog-options.js';
import type { HandshakeStore, HandshakeStoreOptions } from './handshake-store.js';

/** Options of {@link openHandshakeStore}. */
export interface OpenHandshakeStoreOptions extends HandshakeStoreOptions {
  /** Connection lost / restored notes of the Redis and PostgreSQL stores. */
  readonly log?: CatalogLog;
  /** How long one Redis/PostgreSQL call may wait before TC_ERR_BACKEND, in ms (default 5000). */
  readonly callTimeoutMs?: number;
}

/**
 * Opens the handshake store for `url` (the listener's `--catalog`).
 *
 * @throws TC_ERR_CONFIG for another scheme (sqlite is one listener's file: use memory) or a malformed URL;
 * TC_ERR_BACKEND when Redis or PostgreSQL cannot be reached.
 * @example
 * const store = await openHandshakeStore(process.env.TENSORCAST_CATALOG); // memory when unset
 */
export async function openHandshakeStore(url?: string, options: OpenHandshakeStoreOptions = {}): Promise<HandshakeStore> {
  if (url === undefined || url === '' || url === 'memory' || url === 'memory://') {
    const { MemoryHandshakeStore } = await import('./memory-handshake-store.js');
    return new MemoryHandshakeStore(options);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
  switch (scheme) {
    case 'redis':
    case 'rediss': {
      const { RedisHandshakeStore } = await import('./redis-handshake-store.js');
      return RedisHandshakeStore.open(url, options);
    }
    case 'postgres':
    case 'postgresql': {
      const { PostgresHandshakeStore } = await import('./postgres-handshake-store.js');
      return PostgresHandshakeStore.open(url, options);
    }
    default:
      throw tcError(
        'TC_ERR_CONFIG',
        `handshake store '${redactUrl(url)}': scheme '${scheme || '(none)'}' is not supported (use memory, redis://, rediss://, postgres:// or postgresql://)`,
      );
  }
}
