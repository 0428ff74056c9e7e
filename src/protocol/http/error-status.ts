// The one place where error categories become HTTP statuses, and error bodies are shaped (control API and
// handshake service).

import { isSystemError, TensorcastError, tcError, wrapIoError } from '../../core/errors.js';
import type { ErrorCategory, ErrorCode } from '../../core/error-codes.js';
import type { ErrorBody } from './errors.js';

const STATUS: Record<ErrorCategory, number> = {
  InvalidArgument: 400,
  Format: 400,
  NotFound: 404,
  Conflict: 409,
  Auth: 401,
  Timeout: 504,
  Closed: 503,
  Protocol: 400,
  Backend: 503,
  DataLoss: 500,
  Internal: 500,
};

/** Codes whose status differs from their category's. */
const CODE_STATUS: Partial<Record<ErrorCode, number>> = {
  TC_ERR_FORBIDDEN: 403,
  TC_ERR_NO_SPACE: 507,
  TC_ERR_TOO_LARGE: 413,
  TC_ERR_EXPIRED: 410,
};

/** Status and body for any thrown value. */
export function httpError(error: unknown): { status: number; body: ErrorBody } {
  const e = toTensorcastError(error);
  const status = CODE_STATUS[e.code] ?? STATUS[e.category];
  return { status, body: { error: { code: e.code, message: e.message, retryable: e.retryable, details: e.details } } };
}

function toTensorcastError(error: unknown): TensorcastError {
  if (error instanceof TensorcastError) return error;
  // A system error a route did not translate itself (ENOSPC while a body streams to disk, a NUL in a path).
  if (isSystemError(error)) return wrapIoError(error, 'request failed', error.path ?? '(no path)');
  const fastifyError = error as { statusCode?: number; message?: string; code?: string };
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) {
    return tcError('TC_ERR_INVALID_ARGUMENT', `bad request: ${fastifyError.message ?? 'invalid'}`, { cause: error });
  }
  return tcError('TC_ERR_INTERNAL', `internal error: ${fastifyError.message ?? String(error)}`, { cause: error });
}

/**
 * The raw HTTP answer to a request Node's parser refused before any route saw it (headers too large, a
 * malformed request line or length, a request that timed out), with the coded error body: a client learns a
 * code even from these. The status stays Node's (408, 431 or 400).
 *
 * @example socket.end(clientErrorAnswer(error));
 */
export function clientErrorAnswer(error: { code?: unknown }): string {
  const [status, coded] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, tcError('TC_ERR_TIMEOUT', 'the request did not arrive in time')]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, tcError('TC_ERR_TOO_LARGE', 'request headers are above the size limit')]
        : [
            400,
            tcError(
              'TC_ERR_MALFORMED',
              `the request is not valid HTTP/1.1 (${typeof error.code === 'string' ? error.code : 'parse error'})`,
            ),
          ];
  const body = JSON.stringify(httpError(coded).body);
  const reason = status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  return `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
