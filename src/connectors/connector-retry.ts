// The one retry loop of the connectors: a driver classifies each failure as transient (a reset, throttling,
// a lost Redis connection) or final (already translated to our code); transient ones are tried again after
// a jittered exponential backoff, a bounded number of times, then end in a retryable TC_ERR_BACKEND.

import { setTimeout as sleep } from 'node:timers/promises';
import { isTensorcastError, tcError } from '../core/errors.js';
import type { ConnectorLog, RetryPolicy } from './connector-options.js';

/** What a driver's classifier says about one failure. */
export type Failure = { readonly transient: string } | { readonly final: Error };

/** Where a retried call runs: for messages, logs and cancellation. */
export interface RetryScope {
  /** The connector's redacted URL. */
  readonly where: string;
  readonly policy: Required<RetryPolicy>;
  readonly classify: (error: unknown) => Failure;
  readonly log?: ConnectorLog | undefined;
}

/** The defaults of {@link RetryPolicy}. */
export const DEFAULT_RETRY: Required<RetryPolicy> = { attempts: 5, baseDelayMs: 100, maxDelayMs: 2000 };

/**
 * The policy with defaults filled in.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a non-integer or out-of-range field.
 */
export function retryPolicy(policy: RetryPolicy = {}): Required<RetryPolicy> {
  const out = { ...DEFAULT_RETRY, ...policy };
  const ok = (v: number, min: number): boolean => Number.isSafeInteger(v) && v >= min;
  if (!ok(out.attempts, 1) || !ok(out.baseDelayMs, 0) || !ok(out.maxDelayMs, 0) || out.attempts > 100) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `connector retry policy is out of range: ${JSON.stringify(policy)}`);
  }
  return out;
}

/**
 * The wait before try `attempt + 1` (attempt counts from 1): base * 2^(attempt-1), capped, then scaled by a
 * random factor in [0.5, 1) so that many readers that failed together do not retry together.
 */
export function backoffMs(policy: Required<RetryPolicy>, attempt: number): number {
  const capped = Math.min(policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30), policy.maxDelayMs);
  return Math.round(capped * (0.5 + Math.random() / 2));
}

const aborted = (where: string, op: string): Error => tcError('TC_ERR_ABORTED', `${where}: ${op} was aborted`);
/** Read through a call, so that the compiler does not assume the flag stays as it was last seen. */
const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;

/**
 * Runs `fn` until it succeeds, a failure is final, or the policy's tries are spent.
 *
 * @throws the final failure as classified (a tensorcast error passes through untouched); TC_ERR_BACKEND
 *   (retryable, `details.reason` 'transient') after the last try; TC_ERR_ABORTED when `signal` fires.
 * @example
 * const info = await withRetries(scope, 'stat model.safetensors', () => client.send(new HeadObjectCommand(p)));
 */
export async function withRetries<T>(scope: RetryScope, op: string, fn: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const { policy, where } = scope;
  for (let attempt = 1; ; attempt++) {
    if (isAborted(signal)) throw aborted(where, op);
    try {
      return await fn(attempt);
    } catch (error) {
      if (isTensorcastError(error)) throw error;
      if (isAborted(signal)) throw aborted(where, op);
      const failure = scope.classify(error);
      if ('final' in failure) throw failure.final;
      if (attempt >= policy.attempts) {
        scope.log?.warn({ connector: where, op, attempts: attempt, err: failure.transient }, 'connector call failed; giving up');
        throw tcError('TC_ERR_BACKEND', `${where}: ${op} failed ${attempt} times; last: ${failure.transient}`, {
          details: { connector: where, reason: 'transient', attempts: attempt },
        });
      }
      const delayMs = backoffMs(policy, attempt);
      scope.log?.debug({ connector: where, op, attempt, delayMs, err: failure.transient }, 'connector call failed; retrying');
      try {
        await sleep(delayMs, undefined, signal === undefined ? undefined : { signal });
      } catch {
        throw aborted(where, op);
      }
    }
  }
}
