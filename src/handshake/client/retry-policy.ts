// What a failed handshake does next: under 'retry', errors a later attempt can fix (the listener
// unreachable or failing, the engine not published yet or expired while it restarts) are retried with
// exponential backoff and jitter; an incompatible hash, a refused token or a malformed payload never are.

import { isTensorcastError, tcError } from '../../core/errors.js';
import type { ErrorCode } from '../../core/error-codes.js';

/** `fail`: the first error rejects the waiting callers. `retry`: retryable errors are retried (default). */
export type FailurePolicy = 'fail' | 'retry';

/** Backoff of the 'retry' policy. */
export interface RetryOptions {
  /** Attempts per handshake, the first included (default 5). */
  readonly maxAttempts?: number;
  /** Delay before the second attempt; doubles each time (default 100 ms). */
  readonly baseDelayMs?: number;
  /** Longest delay between two attempts (default 2000 ms). */
  readonly maxDelayMs?: number;
}

/** RetryOptions with every default filled in. */
export type ResolvedRetry = Required<RetryOptions>;

/** The defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY: ResolvedRetry = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 2000 };

/**
 * Codes a later attempt can fix. Not found and expired are among them: an engine that restarts publishes
 * again within moments, and a reader that came first waits for it.
 */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'TC_ERR_UNAVAILABLE',
  'TC_ERR_BACKEND',
  'TC_ERR_SHUTTING_DOWN',
  'TC_ERR_NOT_FOUND',
  'TC_ERR_EXPIRED',
  'TC_ERR_IO',
]);

/** True when a handshake that failed with `error` may succeed if tried again. */
export function isRetryable(error: unknown): boolean {
  if (!isTensorcastError(error)) return false;
  if (RETRYABLE.has(error.code)) return true;
  // A listener that failed on its side (5xx) without one of the codes above: a bug or an outage; try again.
  const status = error.details['status'];
  return typeof status === 'number' && status >= 500;
}

/** Fills in the defaults. @throws TC_ERR_INVALID_ARGUMENT for attempts below 1 or negative/inverted delays */
export function resolveRetry(options: RetryOptions | undefined): ResolvedRetry {
  const r = { ...DEFAULT_RETRY, ...stripUndefined(options ?? {}) };
  if (!Number.isInteger(r.maxAttempts) || r.maxAttempts < 1 || !(r.baseDelayMs >= 0) || !(r.maxDelayMs >= r.baseDelayMs)) {
    throw tcError(
      'TC_ERR_INVALID_ARGUMENT',
      `retry options ${JSON.stringify(r)}: need maxAttempts >= 1 and 0 <= baseDelayMs <= maxDelayMs`,
    );
  }
  return r;
}

/**
 * The delay before attempt `attempt` (2 = the first retry): `baseDelayMs * 2^(attempt-2)` capped at
 * `maxDelayMs`, of which a random half is jitter (readers that failed together do not retry together).
 */
export function backoffMs(retry: ResolvedRetry, attempt: number, random: () => number = Math.random): number {
  const full = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** Math.max(0, attempt - 2));
  return full / 2 + random() * (full / 2);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
