// The Python client ships the error catalogue as python/tensorcast/error_codes.json: it must be exactly the
// TypeScript catalogue (codes, categories, retryable, summaries), so both languages raise the same codes.
// Regenerate it with `node scripts/gen-python-error-codes.mjs` after adding a code.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES } from '../../src/core/error-codes.js';
import { REPO_ROOT } from '../helpers/cli.js';

test('python/tensorcast/error_codes.json is the TypeScript catalogue', () => {
  const shipped = JSON.parse(readFileSync(join(REPO_ROOT, 'python', 'tensorcast', 'error_codes.json'), 'utf8')) as unknown;
  assert.deepEqual(shipped, JSON.parse(JSON.stringify(ERROR_CODES)), 'run `node scripts/gen-python-error-codes.mjs`');
});
