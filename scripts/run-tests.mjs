// Runs every compiled test file (dist/**/*.test.js) with node's test runner. Node 20's `node --test`
// takes no globs, so the files are listed here. Extra arguments are passed to node before the files.
// Output goes through scripts/test-reporter.mjs (one line a file, skips and failures in full, node's closing
// lines and a summary line) unless a --test-reporter is given (e.g. `--test-reporter=spec` for every test).
// TEST_FILTER=<substring> runs only the files whose path under dist/ contains it.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
/** @type {string[]} */
const files = [];
/** @param {string} dir */
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.js')) files.push(path);
  }
};
walk(root);
files.sort();
const filter = process.env.TEST_FILTER;
const selected = filter ? files.filter((f) => relative(root, f).includes(filter)) : files;
if (selected.length === 0) {
  console.error('run-tests: no test files found under dist/ (run `npm run build` first)');
  process.exit(1);
}
const extra = process.argv.slice(2);
const reporter = extra.some((a) => a.startsWith('--test-reporter'))
  ? []
  : [`--test-reporter=${join(dirname(fileURLToPath(import.meta.url)), 'test-reporter.mjs')}`, '--test-reporter-destination=stdout'];
const args = ['--test', '--test-concurrency=2', ...reporter, ...extra, ...selected];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
