// Install configuration as a user meets it: npm commands in the project print no config warnings, and
// better-sqlite3's installer (prebuild-install) is told to build from source, never to download a binary.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.js';

test('install: npm in the project warns about no unknown config', () => {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /Unknown (project|user|global|builtin) config/);
});

test('install: prebuild-install, run from inside the project, builds better-sqlite3 from source', (t) => {
  // prebuild-install finds its rc file from the working directory upward, and reads package.json there: as
  // in better-sqlite3's install step under node_modules, run it in a directory inside the project.
  const cwd = mkdtempSync(join(REPO_ROOT, 'dist', 'install-config-'));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3/package.json');
  const rc = createRequire(sqlite).resolve('prebuild-install/rc.js');
  copyFileSync(sqlite, join(cwd, 'package.json'));
  const script = `const pkg = require(${JSON.stringify(sqlite)}); console.log(JSON.stringify(require(${JSON.stringify(rc)})(pkg).buildFromSource));`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (/^npm_config_build_from_source$/i.test(name)) delete env[name];
  const r = spawnSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), true);
  assert.ok(dirname(rc).endsWith('prebuild-install'));
});
