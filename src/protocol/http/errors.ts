// The error body of every failed control-API request, shaped by the daemon and rebuilt by the client.

import { errorFromWire, type TensorcastError } from '../../core/errors.js';

/** The HTTP body of an error: `{"error": {"code", "message", "retryable", "details"}}`. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly retryable: boolean; readonly details: object };
}

/** Rebuilds the error a daemon answered with (the same class and code as on the daemon). */
export function errorFromBody(body: unknown, status: number): TensorcastError {
  const e = (body as Partial<ErrorBody> | undefined)?.error as
    { code?: unknown; message?: unknown; details?: { reason?: unknown } } | undefined;
  const reason = e?.details?.reason;
  return errorFromWire(e?.code, e?.message, `daemon answered HTTP ${status}`, {
    details: typeof reason === 'string' ? { status, reason } : { status },
  });
}
