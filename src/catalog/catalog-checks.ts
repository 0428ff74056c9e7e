// Checks and helpers every catalog backend shares: argument checks, the redacted form of a catalog URL,
// and the translation of a driver's failure into TC_ERR_BACKEND.

import { isTensorcastError, tcError } from '../core/errors.js';

/**
 * Checks the delta of {@link Catalog.adjustReplicaFetches}: a safe integer.
 *
 * @throws TC_ERR_INVALID_ARGUMENT otherwise.
 */
export function checkFetchDelta(delta: number): void {
  if (!Number.isSafeInteger(delta)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `active-fetch delta must be an integer, got ${delta}`, { details: { delta } });
  }
}

/**
 * The catalog URL with its password replaced by `***`, safe for messages and logs.
 *
 * @example redactUrl('redis://u:secret@h:6379/0') // 'redis://u:***@h:6379/0'
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    // Not a URL: drop whatever sits between '://' and the last '@' before the path.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');
  }
}

/** Removes every occurrence of `secret` from `text` (a driver may echo a password back). */
export function scrub(text: string, secret: string | undefined): string {
  return secret === undefined || secret === '' ? text : text.split(secret).join('***');
}

/**
 * Translates a driver failure into TC_ERR_BACKEND naming the operation and the redacted catalog URL
 * (`where`); a tensorcast error passes through. With a `secret` (the password), the driver's error is not
 * kept as the cause and the secret is scrubbed from the message, so neither can leak into a log.
 */
export function backendError(op: string, where: string, error: unknown, secret?: string): Error {
  if (isTensorcastError(error)) return error;
  const message = error instanceof Error ? error.message || error.name : String(error);
  return tcError('TC_ERR_BACKEND', `catalog ${op} (${where}): ${scrub(message, secret)}`, {
    details: { catalog: where },
    ...(secret === undefined || secret === '' ? { cause: error } : {}),
  });
}
