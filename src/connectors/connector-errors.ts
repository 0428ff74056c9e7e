// Keeping credentials out of what connectors print: the redacted form of a connector URL, scrubbing a
// driver's message, and the coded errors every driver builds from a backend failure.

import { tcError, type TensorcastError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-codes.js';

/** Query parameters of a connector URL that carry secrets (compared case-insensitively). */
const SECRET_PARAMS = new Set(['secretaccesskey', 'sessiontoken', 'password', 'token', 'secret']);

/**
 * The connector URL with its password and secret query parameters replaced by `***`, safe for messages,
 * logs and listings.
 *
 * @example redactConnectorUrl('s3://b/p?accessKeyId=AK&secretAccessKey=xyz') // 's3://b/p?accessKeyId=AK&secretAccessKey=***'
 */
export function redactConnectorUrl(url: string): string {
  const [head = '', ...rest] = url.split('?');
  const query = rest.join('?');
  let base: string;
  try {
    const parsed = new URL(head);
    if (parsed.password !== '') parsed.password = '***';
    base = parsed.toString();
  } catch {
    // Not a URL: drop any userinfo.
    base = head.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');
  }
  if (rest.length === 0) return base;
  // The query stays as written (an endpoint URL in it stays readable); only secret values are replaced.
  const redacted = query
    .split('&')
    .map((pair) => {
      const name = pair.split('=')[0] ?? '';
      let decoded: string;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        return `${name}=***`; // undecodable: hide it rather than guess
      }
      return SECRET_PARAMS.has(decoded.toLowerCase()) ? `${name}=***` : pair;
    })
    .join('&');
  return `${base}?${redacted}`;
}

/** The secrets a URL carries (password, secret query parameters), to scrub from driver messages. */
export function urlSecrets(url: string): string[] {
  try {
    const parsed = new URL(url);
    const secrets = [parsed.password, decodeURIComponent(parsed.password)];
    for (const [name, value] of parsed.searchParams) if (SECRET_PARAMS.has(name.toLowerCase())) secrets.push(value);
    return secrets.filter((s) => s.length >= 3);
  } catch {
    return [];
  }
}

/** Removes every occurrence of each secret from `text` (a driver may echo one back). */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('***');
  return out;
}

/** The message of a foreign error, scrubbed of `secrets`. */
export function foreignMessage(error: unknown, secrets: readonly string[]): string {
  const e = error as { message?: unknown; name?: unknown; code?: unknown } | undefined;
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : typeof e?.name === 'string' ? e.name : String(error);
  const code = typeof e?.code === 'string' && !message.includes(e.code) ? ` (${e.code})` : '';
  return scrubSecrets(`${message}${code}`, secrets);
}

/**
 * A coded error for a backend failure of operation `op` on the connector `where` (its redacted URL). The
 * driver's error is kept as the cause only when the connector holds no secret.
 */
export function connectorError(
  code: ErrorCode,
  where: string,
  op: string,
  error: unknown,
  secrets: readonly string[],
  details: Record<string, string | number | boolean> = {},
): TensorcastError {
  return tcError(code, `${where}: ${op}: ${foreignMessage(error, secrets)}`, {
    details: { connector: where, ...details },
    ...(secrets.length === 0 ? { cause: error } : {}),
  });
}
