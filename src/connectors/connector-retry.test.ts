import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tcError } from '../core/errors.js';
import { backoffMs, retryPolicy, withRetries, type Failure, type RetryScope } from './connector-retry.js';

const scope = (classify: (e: unknown) => Failure, attempts = 4): RetryScope => ({
  where: 'redis://h/m',
  policy: retryPolicy({ attempts, baseDelayMs: 1, maxDelayMs: 4 }),
  classify,
});

test('retries: transient failures are tried again up to the bound, then a retryable TC_ERR_BACKEND', async () => {
  let calls = 0;
  await assert.rejects(
    withRetries(
      scope(() => ({ transient: 'ECONNRESET' })),
      'read k',
      () => {
        calls++;
        return Promise.reject(new Error('reset'));
      },
    ),
    (e: Error & { code?: string; retryable?: boolean; details?: Record<string, unknown> }) => {
      assert.deepEqual([e.code, e.retryable, e.details?.attempts], ['TC_ERR_BACKEND', true, 4]);
      assert.match(e.message, /read k failed 4 times; last: ECONNRESET/);
      return true;
    },
  );
  assert.equal(calls, 4);
  calls = 0;
  assert.equal(
    await withRetries(
      scope(() => ({ transient: 'x' })),
      'op',
      () => (++calls < 3 ? Promise.reject(new Error('x')) : Promise.resolve('done')),
    ),
    'done',
  );
  assert.equal(calls, 3);
});

test('retries: final failures and tensorcast errors are not retried; an abort stops the wait', async () => {
  let calls = 0;
  const final = tcError('TC_ERR_AUTH', 'refused');
  await assert.rejects(
    withRetries(
      scope(() => ({ final })),
      'op',
      () => {
        calls++;
        return Promise.reject(new Error('403'));
      },
    ),
    final,
  );
  const changed = tcError('TC_ERR_SOURCE_CHANGED', 'moved');
  await assert.rejects(
    withRetries(
      scope(() => ({ transient: 'x' })),
      'op',
      () => {
        calls++;
        return Promise.reject(changed);
      },
    ),
    changed,
  );
  assert.equal(calls, 2);
  const controller = new AbortController();
  const slow: RetryScope = {
    ...scope(() => ({ transient: 'x' })),
    policy: retryPolicy({ attempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 }),
  };
  const pending = withRetries(slow, 'op', () => Promise.reject(new Error('x')), controller.signal);
  setImmediate(() => controller.abort());
  await assert.rejects(pending, { code: 'TC_ERR_ABORTED' });
});

test('retries: backoff doubles from the base, is capped, and jitters within [half, full]', () => {
  const policy = retryPolicy({ attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 });
  for (let i = 0; i < 200; i++) {
    for (const [attempt, full] of [
      [1, 100],
      [2, 200],
      [4, 800],
      [5, 1000],
      [9, 1000],
    ] as const) {
      const d = backoffMs(policy, attempt);
      assert.ok(d >= full / 2 && d <= full, `attempt ${attempt}: ${d}`);
    }
  }
  assert.throws(() => retryPolicy({ attempts: 0 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => retryPolicy({ baseDelayMs: -1 }), { code: 'TC_ERR_INVALID_ARGUMENT' });
});
