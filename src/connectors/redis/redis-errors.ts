// How a node-redis failure is classified at the connector boundary: refused credentials -> TC_ERR_AUTH; a
// lost connection, a timeout or a server still loading its data -> transient (retried); any other error
// reply -> TC_ERR_BACKEND.

import {
  AbortError,
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ErrorReply,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from 'redis';
import { tcError } from '../../core/errors.js';
import { connectorError, foreignMessage } from '../connector-errors.js';
import type { Failure } from '../connector-retry.js';

/** Error replies that come and go: a server loading its dataset, busy with a script, or failing over. */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN)\b/;
/** Error replies about credentials and permissions. */
const AUTH_REPLIES = /^(WRONGPASS|NOAUTH|NOPERM)\b|^ERR AUTH\b|invalid password|invalid username/i;
/** Socket errors of a dropped or unreachable server. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** True when `error` means the connection is down or stalled (worth another try). */
export function isRedisConnectionError(error: unknown): boolean {
  if (
    error instanceof ClientOfflineError ||
    error instanceof SocketClosedUnexpectedlyError ||
    error instanceof ConnectionTimeoutError ||
    error instanceof SocketTimeoutError ||
    error instanceof TimeoutError ||
    error instanceof ReconnectStrategyError
  ) {
    return true;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/**
 * A classifier for {@link withRetries} on connector `where` (redacted URL) doing `op`.
 * `closed` says whether the connector itself was closed (then a closed client is final, not transient).
 */
export function redisClassifier(where: string, secrets: readonly string[], closed: () => boolean): (error: unknown) => Failure {
  return (error) => {
    if (error instanceof AbortError) return { final: tcError('TC_ERR_ABORTED', `${where}: the call was aborted`) };
    if (error instanceof ClientClosedError) {
      return closed()
        ? { final: tcError('TC_ERR_ABORTED', `${where}: the connector is closed`) }
        : { transient: foreignMessage(error, secrets) };
    }
    if (error instanceof ErrorReply) {
      const message = error.message;
      if (AUTH_REPLIES.test(message))
        return { final: connectorError('TC_ERR_AUTH', where, 'Redis refused the credentials', error, secrets) };
      if (TRANSIENT_REPLIES.test(message)) return { transient: foreignMessage(error, secrets) };
      return { final: connectorError('TC_ERR_BACKEND', where, 'Redis error', error, secrets) };
    }
    if (isRedisConnectionError(error)) return { transient: foreignMessage(error, secrets) };
    return { final: connectorError('TC_ERR_BACKEND', where, 'Redis client error', error, secrets) };
  };
}
