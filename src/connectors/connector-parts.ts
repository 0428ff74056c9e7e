// A ranged read as parts: the split of a range into block-aligned parts, and a bounded-concurrency loop
// over them that, on the first failure, stops scheduling, aborts the parts in flight and waits for them, so
// that no part writes into the caller's buffer after the read has failed.

/** One part of a split range: `length` bytes at `offset` of the object, at `at` of the destination. */
export interface RangePart {
  readonly offset: number;
  readonly length: number;
  readonly at: number;
}

/**
 * Splits `length` bytes at `offset` into parts of at most `partBytes`, aligned to multiples of `partBytes`
 * in the object (so parts of neighbouring reads line up with chunk boundaries).
 *
 * @example splitRange(10, 20, 8) // [{offset:10,length:6,at:0},{offset:16,length:8,at:6},{offset:24,length:6,at:14}]
 */
export function splitRange(offset: number, length: number, partBytes: number): RangePart[] {
  const parts: RangePart[] = [];
  let at = 0;
  while (at < length) {
    const start = offset + at;
    const end = Math.min(offset + length, (Math.floor(start / partBytes) + 1) * partBytes);
    parts.push({ offset: start, length: end - start, at });
    at += end - start;
  }
  return parts;
}

/**
 * Runs `fn` over `items`, at most `limit` at once. On the first failure no further item starts, the
 * signal given to the running ones fires, and the failure is thrown once all of them have settled.
 *
 * @throws the first failure of `fn`.
 * @example await forEachBounded(parts, 16, (part, signal) => fetchPart(part, signal), options.signal);
 */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<void>,
  outer?: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  if (outer?.aborted === true) controller.abort();
  outer?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item, controller.signal);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          controller.abort();
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  } finally {
    outer?.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure.error;
}
