// The test command's reporter (scripts/test-reporter.mjs): a line per file, skip reasons, failures in full
// with the file's output, node's closing lines and one summary line that CI reads.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('reporter: per-file lines, skips with reasons, failures in full, closing lines and the summary line', (t) => {
  const dir = tempDir(t);
  writeFileSync(
    join(dir, 'a.test.mjs'),
    `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\n` +
      `test('adds', () => assert.equal(1 + 1, 2));\n` +
      `test('needs a service', (t) => t.skip('no service here'));\n` +
      `test('breaks', () => { console.log('said before breaking'); assert.equal('got', 'wanted'); });\n`,
  );
  writeFileSync(join(dir, 'b.test.mjs'), `import { test } from 'node:test';\ntest('fine', () => {});\n`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  const r = spawnSync(
    process.execPath,
    ['--test', `--test-reporter=${join(REPO_ROOT, 'scripts', 'test-reporter.mjs')}`, join(dir, 'a.test.mjs'), join(dir, 'b.test.mjs')],
    { cwd: dir, encoding: 'utf8', env },
  );
  assert.equal(r.status, 1, r.stderr);
  const out = r.stdout;
  assert.match(out, /^FAIL a\.test\.mjs \(/m);
  assert.match(out, /^ok {3}b\.test\.mjs \(/m);
  assert.match(out, /skipped needs a service: no service here/);
  assert.match(out, /FAIL breaks \(a\.test\.mjs:5:/);
  assert.match(out, /^ +actual: 'got',$/m);
  assert.match(out, /\| said before breaking/);
  for (const line of ['# tests 4', '# pass 2', '# fail 1', '# skipped 1']) assert.ok(out.split('\n').includes(line), line);
  assert.equal(out.trimEnd().split('\n').at(-1), 'tests: 2 passed, 1 failed, 1 skipped');
  assert.ok(out.split('\n').length < 60, 'compact');
});
