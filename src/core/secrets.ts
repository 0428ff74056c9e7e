// Secret comparison shared by every listener that checks a bearer token (control API, data plane).

import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time comparison of a presented token with the expected one (lengths do not leak either).
 *
 * @example if (!tokenMatches(header, token)) throw tcError('TC_ERR_AUTH', 'wrong token');
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
