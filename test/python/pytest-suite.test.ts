// Runs the Python client's pytest suite (python/tests/) as part of the README's test command: one node test
// per test file, each a `python -m pytest` process against real daemons the Python fixtures start from the
// built CLI. Where the python lacks numpy, msgpack, google_crc32c or pytest the tests skip with the reason,
// and fail instead under TENSORCAST_REQUIRE_SERVICES=1 (the Python tests apply the same rule to what they
// need beyond that: torch, transformers, safetensors).

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.js';
import { missingPython, pythonWith } from '../helpers/python.js';
import { skipOrFail } from '../helpers/require.js';

const MODULES = ['numpy', 'msgpack', 'google_crc32c', 'pytest'];
const TESTS = join(REPO_ROOT, 'python', 'tests');
const files = readdirSync(TESTS)
  .filter((f) => /^test_.*\.py$/.test(f))
  .sort();

/** Runs pytest on one file; resolves with its exit code and output. */
function pytest(python: string, file: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider', join(TESTS, file)], {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONPATH: join(REPO_ROOT, 'python'), PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

for (const file of files) {
  test(`pytest python/tests/${file}`, async (t) => {
    const python = pythonWith(MODULES);
    if (python === undefined) return skipOrFail(t, missingPython(MODULES));
    const { code, output } = await pytest(python, file);
    // pytest exits 5 when it collected nothing: a file whose tests all vanished is a failure too.
    if (code !== 0) throw new Error(`pytest ${file} exited ${code}:\n${output.slice(-12_000)}`);
    const skipped = /(\d+) skipped/.exec(output);
    if (skipped !== null)
      t.diagnostic(
        `${skipped[1]} skipped:\n${output
          .split('\n')
          .filter((l) => l.startsWith('SKIPPED'))
          .join('\n')}`,
      );
  });
}
