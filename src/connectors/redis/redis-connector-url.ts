// Parses a Redis connector URL: `redis://[user:pass@]host[:port]/<prefix>[?db=N]`, `rediss://` for TLS.
// The path is the key prefix (for a model, its name, as SGLang's Redis connector reads it).

import { tcError } from '../../core/errors.js';
import { redactConnectorUrl, urlSecrets } from '../connector-errors.js';

/** A parsed Redis connector URL. */
export interface RedisConnectorUrl {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly database: number;
  /** The URL's path without its leading and trailing '/' ('' for none): every key starts with it. */
  readonly prefix: string;
  /** The URL with its password redacted. */
  readonly redacted: string;
  /** Strings to scrub from driver messages. */
  readonly secrets: readonly string[];
}

/**
 * Parses `url`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for another scheme, a bad port or database number, or an unknown query
 *   parameter; the message never shows the password.
 * @example parseRedisConnectorUrl('redis://:secret@10.0.0.5:6379/llama-3-8b?db=2')
 */
export function parseRedisConnectorUrl(url: string): RedisConnectorUrl {
  const redacted = redactConnectorUrl(url);
  const bad = (why: string): Error =>
    tcError('TC_ERR_INVALID_ARGUMENT', `connector URL ${redacted}: ${why} (expected redis://[user:pass@]host:port/<prefix>[?db=N])`, {
      details: { connector: redacted },
    });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw bad(`scheme '${parsed.protocol}' is not redis: or rediss:`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw bad('no host');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`bad port '${parsed.port}'`);
  for (const name of parsed.searchParams.keys()) {
    if (name !== 'db') throw bad(`unknown parameter '${name}' (known: db)`);
  }
  const db = parsed.searchParams.get('db') ?? '0';
  if (!/^\d{1,9}$/.test(db)) throw bad(`bad database number '${db}'`);
  if (parsed.hash !== '') throw bad('a fragment is not allowed');
  let prefix: string;
  try {
    prefix = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
  } catch {
    throw bad('the prefix is not valid percent-encoding');
  }
  return {
    host,
    port,
    tls: parsed.protocol === 'rediss:',
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    database: Number(db),
    prefix,
    redacted,
    secrets: urlSecrets(url),
  };
}
