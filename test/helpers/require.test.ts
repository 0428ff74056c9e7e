// skipOrFail: skips normally, fails when TENSORCAST_REQUIRE_SERVICES=1; and a run of the test runner
// shows the skip really turns into a failing test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RequiredServiceMissing, skipOrFail } from './require.js';
import { tempDir } from './tmp.js';

test('skipOrFail skips with the reason when services are not required', () => {
  const skipped: (string | undefined)[] = [];
  const t = { skip: (message?: string) => void skipped.push(message) };
  for (const value of [undefined, '', '0', 'true']) {
    skipOrFail(t, 'needs redis', value === undefined ? {} : { TENSORCAST_REQUIRE_SERVICES: value });
  }
  assert.deepEqual(skipped, ['needs redis', 'needs redis', 'needs redis', 'needs redis']);
});

test('skipOrFail throws the reason when TENSORCAST_REQUIRE_SERVICES=1', () => {
  const skipped: (string | undefined)[] = [];
  const t = { skip: (message?: string) => void skipped.push(message) };
  assert.throws(
    () => skipOrFail(t, 'needs redis', { TENSORCAST_REQUIRE_SERVICES: '1' }),
    (error: unknown) => {
      assert.ok(error instanceof RequiredServiceMissing);
      assert.match(error.message, /needs redis/);
      assert.match(error.message, /TENSORCAST_REQUIRE_SERVICES=1/);
      return true;
    },
  );
  assert.deepEqual(skipped, []);
});

test('under the test runner a required-but-missing service is a failed test, not a skip', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'probe.test.mjs');
  const helper = pathToFileURL(join(import.meta.dirname, 'require.js')).href;
  writeFileSync(
    file,
    `import { test } from 'node:test';\nimport { skipOrFail } from ${JSON.stringify(helper)};\n` +
      `test('probe', (t) => { skipOrFail(t, 'probe service missing'); });\n`,
  );
  const run = (value: string): { status: number | null; stdout: string } => {
    // Without NODE_TEST_CONTEXT, the child is a test run of its own, not a subtest reporting to this one.
    const env: NodeJS.ProcessEnv = { ...process.env, TENSORCAST_REQUIRE_SERVICES: value };
    delete env['NODE_TEST_CONTEXT'];
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], { encoding: 'utf8', env });
    return { status: r.status, stdout: r.stdout };
  };
  const lenient = run('0');
  assert.equal(lenient.status, 0, lenient.stdout);
  assert.match(lenient.stdout, /^# skipped 1$/m);
  const strict = run('1');
  assert.equal(strict.status, 1, strict.stdout);
  assert.match(strict.stdout, /^# fail 1$/m);
  assert.match(strict.stdout, /probe service missing/);
});
