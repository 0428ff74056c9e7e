// Opens a catalog from its URL: `sqlite://<path>` (embedded default). Drivers load lazily, per backend.

import { tcError } from '../core/errors.js';
import type { Catalog } from './catalog.js';

/**
 * Opens the catalog named by `url`.
 *
 * @throws TC_ERR_CONFIG for an unknown scheme; TC_ERR_BACKEND when the engine cannot be opened.
 * @example const catalog = await openCatalog('sqlite:///var/lib/tensorcast/catalog.db');
 */
export async function openCatalog(url: string): Promise<Catalog> {
  if (url.startsWith('sqlite://')) {
    const { SqliteCatalog } = await import('./sqlite/sqlite-catalog.js');
    return SqliteCatalog.open(url.slice('sqlite://'.length));
  }
  const scheme = url.split(':')[0] ?? url;
  throw tcError(
    'TC_ERR_CONFIG',
    `catalog URL '${url}': scheme '${scheme}' is not supported yet (use sqlite://<path>; redis:// and postgres:// come with the cluster work)`,
  );
}
