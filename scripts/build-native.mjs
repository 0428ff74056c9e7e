// npm install hook: builds the native gather kernel with node-gyp from source. When no compiler is
// available the build is skipped with a notice and tensorcast runs its TypeScript kernel instead.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.TENSORCAST_SKIP_NATIVE === '1') {
  console.error('tensorcast: TENSORCAST_SKIP_NATIVE=1, not building the native kernel (the TypeScript kernel will run)');
  process.exit(0);
}
// npm sets npm_config_node_gyp for lifecycle scripts; otherwise look beside npm and beside node.
const require = createRequire(import.meta.url);
const candidates = [
  process.env.npm_config_node_gyp,
  process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
];
try {
  candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
} catch {
  // not installed as a package: fine
}
const gyp = candidates.find((c) => c && existsSync(c));
if (gyp === undefined) {
  console.error('tensorcast: node-gyp not found; the TypeScript kernel will run');
  process.exit(0);
}
// Build against the headers installed with node; never let node-gyp download them.
const nodedir = process.env.npm_config_nodedir ?? join(dirname(process.execPath), '..');
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  console.error(`tensorcast: no Node headers under ${nodedir}/include/node; the TypeScript kernel will run`);
  process.exit(0);
}
const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('tensorcast: building the native kernel failed; the TypeScript kernel will run (see above)');
}
process.exit(0);
