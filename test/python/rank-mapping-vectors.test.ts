// The Python map_ranks is checked (python/tests/test_rank_mapping.py) against test/fixtures/rank-mapping-vectors.json,
// written by the TypeScript mapRanks. This test checks the TypeScript mapRanks against the same file, so a change of
// the rules on either side fails until the file is regenerated (`node scripts/gen-rank-mapping-vectors.mjs`).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTensorcastError } from '../../src/core/errors.js';
import { mapRanks, type RankMappingInput } from '../../src/handshake/rank-mapping.js';
import { REPO_ROOT } from '../helpers/cli.js';

interface Vector {
  readonly input: RankMappingInput;
  readonly output?: unknown;
  readonly error?: string;
}

test('test/fixtures/rank-mapping-vectors.json is what the TypeScript mapRanks gives', () => {
  const file = join(REPO_ROOT, 'test', 'fixtures', 'rank-mapping-vectors.json');
  const { vectors } = JSON.parse(readFileSync(file, 'utf8')) as { vectors: Vector[] };
  assert.ok(vectors.length > 1000);
  for (const v of vectors) {
    const what = `${JSON.stringify(v.input)}: run \`node scripts/gen-rank-mapping-vectors.mjs\``;
    if (v.error !== undefined) {
      assert.throws(
        () => mapRanks(v.input),
        (e: unknown) => isTensorcastError(e) && e.code === v.error,
        what,
      );
    } else {
      assert.deepEqual(JSON.parse(JSON.stringify(mapRanks(v.input))), v.output, what);
    }
  }
});
