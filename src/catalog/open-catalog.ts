// Opens a catalog from its URL: `sqlite://<path>` (embedded default), `redis://` / `rediss://` and
// `postgres://` / `postgresql://` (a cluster). Drivers load lazily, per backend.

import { tcError } from '../core/errors.js';
import type { Catalog } from './catalog.js';
import { redactUrl } from './catalog-checks.js';
import type { OpenCatalogOptions } from './catalog-options.js';

/**
 * Opens the catalog named by `url` (docs/config.md lists the forms).
 *
 * @throws TC_ERR_CONFIG for an unknown scheme or a malformed URL; TC_ERR_BACKEND when the engine cannot be
 * opened or reached.
 * @example
 * const local = await openCatalog('sqlite:///var/lib/tensorcast/catalog.db');
 * const shared = await openCatalog('redis://:secret@10.0.0.5:6379/0', { log });
 */
export async function openCatalog(url: string, options: OpenCatalogOptions = {}): Promise<Catalog> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
  switch (scheme) {
    case 'sqlite': {
      const { SqliteCatalog } = await import('./sqlite/sqlite-catalog.js');
      return SqliteCatalog.open(url.slice('sqlite://'.length));
    }
    case 'redis':
    case 'rediss': {
      const { RedisCatalog } = await import('./redis/redis-catalog.js');
      return RedisCatalog.open(url, options);
    }
    case 'postgres':
    case 'postgresql': {
      const { PostgresCatalog } = await import('./postgres/postgres-catalog.js');
      return PostgresCatalog.open(url, options);
    }
    default:
      throw tcError(
        'TC_ERR_CONFIG',
        `catalog URL '${redactUrl(url)}': scheme '${scheme || '(none)'}' is not supported (use sqlite://<path>, redis://, rediss://, postgres:// or postgresql://)`,
      );
  }
}
