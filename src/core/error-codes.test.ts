import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../../test/helpers/cli.js';
import { ERROR_CODES } from './error-codes.js';
import { tcError, DataLossError, FormatError, NotFoundError } from './errors.js';

test('docs/errors.md lists every code with its category and retryable flag, and nothing else', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| (TC_ERR_[A-Z0-9_]+) \| (\w+) \| (yes|no) \|/gm)].map((m) => [m[1], m[2], m[3] === 'yes']);
  const catalogue = Object.entries(ERROR_CODES).map(([code, info]) => [code, info.category, info.retryable]);
  assert.deepEqual(rows, catalogue);
});

test('errors: subclass by category, stable code, cause kept', () => {
  const cause = new Error('root');
  const e = tcError('TC_ERR_FORMAT_INVALID_OFFSET', 'x', { cause, details: { tensor: 't' } });
  assert.ok(e instanceof FormatError);
  assert.equal(e.code, 'TC_ERR_FORMAT_INVALID_OFFSET');
  assert.equal(e.cause, cause);
  assert.equal(e.name, 'FormatError');
  assert.ok(tcError('TC_ERR_NOT_FOUND', 'x') instanceof NotFoundError);
  assert.ok(tcError('TC_ERR_SHORT_READ', 'x') instanceof DataLossError);
  assert.equal(tcError('TC_ERR_IO', 'x').retryable, true);
});
