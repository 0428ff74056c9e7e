// Parses a Redis catalog URL: `redis://[user:pass@]host[:port][/db][?prefix=P]`, `rediss://` for TLS.

import { tcError } from '../../core/errors.js';
import { redactUrl } from '../catalog-checks.js';

/** The default key prefix of a Redis catalog. */
export const DEFAULT_REDIS_PREFIX = 'tensorcast:';

/** A parsed Redis catalog URL. */
export interface RedisCatalogUrl {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly database: number;
  /** Every key of the catalog starts with it. */
  readonly prefix: string;
  /** The URL with its password redacted, for messages and logs. */
  readonly redacted: string;
}

/**
 * Parses `url`.
 *
 * @throws TC_ERR_CONFIG for another scheme, a bad port or database number, an empty prefix or an unknown
 * query parameter.
 * @example parseRedisCatalogUrl('redis://:secret@10.0.0.5:6379/2?prefix=prod:tc:')
 */
export function parseRedisCatalogUrl(url: string): RedisCatalogUrl {
  const redacted = redactUrl(url);
  const bad = (why: string): Error => tcError('TC_ERR_CONFIG', `catalog URL ${redacted}: ${why}`, { details: { catalog: redacted } });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('not a URL (expected redis://[user:pass@]host:port[/db][?prefix=P])');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw bad(`scheme '${parsed.protocol}' is not redis: or rediss:`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw bad('no host');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`bad port '${parsed.port}'`);
  const path = parsed.pathname.replace(/^\//, '');
  const database = path === '' ? 0 : Number(path);
  if (!/^\d*$/.test(path) || !Number.isSafeInteger(database)) throw bad(`bad database number '${path}' (expected /0, /1, ...)`);
  for (const name of parsed.searchParams.keys()) {
    if (name !== 'prefix') throw bad(`unknown parameter '${name}' (known: prefix)`);
  }
  const prefix = parsed.searchParams.get('prefix') ?? DEFAULT_REDIS_PREFIX;
  if (prefix === '') throw bad('empty prefix');
  return {
    host,
    port,
    tls: parsed.protocol === 'rediss:',
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    database,
    prefix,
    redacted,
  };
}
