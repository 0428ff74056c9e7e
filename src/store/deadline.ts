// Bounding a wait by a deadline: every wait in a load ends by its request's deadline in a coded error.

import { tcError } from '../core/errors.js';

/**
 * Resolves as `work` does, or rejects with TC_ERR_TIMEOUT at `deadline` (Unix ms), whichever comes first.
 * `work` keeps running after a timeout; its later rejection is swallowed.
 *
 * @throws TC_ERR_TIMEOUT naming `what` when the deadline passes first.
 * @example await withDeadline(replica.ready(0, n), req.deadline, 'waiting for a replica window');
 */
export function withDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  const left = deadline - Date.now();
  // setTimeout cannot wait longer than 2^31 - 1 ms (~24 days): such a deadline bounds nothing in practice.
  if (!Number.isFinite(deadline) || left > 0x7fffffff) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(tcError('TC_ERR_TIMEOUT', `${what}: the request's deadline passed`, { details: { deadline } })),
      Math.max(0, left),
    );
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
