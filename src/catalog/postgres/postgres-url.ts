// Parses a PostgreSQL catalog URL: `postgres[ql]://[user[:pass]@]host[:port]/db[?schema=NAME&...]`. `schema`
// is ours (default `tensorcast`); every other parameter (sslmode, ...) goes to the driver as given.

import { tcError } from '../../core/errors.js';
import { redactUrl } from '../catalog-checks.js';

/** The default schema of a PostgreSQL catalog. */
export const DEFAULT_POSTGRES_SCHEMA = 'tensorcast';

/** A parsed PostgreSQL catalog URL. */
export interface PostgresCatalogUrl {
  /** The URL for the driver, without `schema`. */
  readonly connectionString: string;
  /** The schema holding the catalog's tables: lower-case letters, digits and `_`. */
  readonly schema: string;
  readonly password: string | undefined;
  /** The URL with its password redacted, for messages and logs. */
  readonly redacted: string;
}

/**
 * Parses `url`.
 *
 * @throws TC_ERR_CONFIG for another scheme or a bad schema name.
 * @example parsePostgresCatalogUrl('postgres://tc:secret@db:5432/cluster?schema=prod')
 */
export function parsePostgresCatalogUrl(url: string): PostgresCatalogUrl {
  const redacted = redactUrl(url);
  const bad = (why: string): Error => tcError('TC_ERR_CONFIG', `catalog URL ${redacted}: ${why}`, { details: { catalog: redacted } });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('not a URL (expected postgres://[user:pass@]host:port/database[?schema=NAME])');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw bad(`scheme '${parsed.protocol}' is not postgres:`);
  const schema = parsed.searchParams.get('schema') ?? DEFAULT_POSTGRES_SCHEMA;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw bad(`schema '${schema}': use lower-case letters, digits and _ (at most 63)`);
  parsed.searchParams.delete('schema');
  return {
    connectionString: parsed.toString(),
    schema,
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    redacted,
  };
}
