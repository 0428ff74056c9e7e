// npm install hook: builds the native gather kernel with node-gyp from source. When no compiler is
// available the build is skipped with a notice and tensorcast runs its TypeScript kernel instead.
// Prints one line when it starts, one every 30 s while it runs and one at the end with the time taken;
// node-gyp's own output is kept and printed only when the build fails.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { setInterval, clearInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** @param {string} line */
const say = (line) => process.stderr.write(`tensorcast: ${line}\n`);
if (process.env.TENSORCAST_SKIP_NATIVE === '1') {
  say('TENSORCAST_SKIP_NATIVE=1, not building the native kernel (the TypeScript kernel will run)');
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
  say('node-gyp not found; the TypeScript kernel will run');
  process.exit(0);
}
// Build against the headers installed with node; never let node-gyp download them.
const nodedir = process.env.npm_config_nodedir ?? join(dirname(process.execPath), '..');
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  say(`no Node headers under ${nodedir}/include/node; the TypeScript kernel will run`);
  process.exit(0);
}

const started = Date.now();
const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
say('building the native gather kernel from native/*.c with node-gyp ...');
const child = spawn(process.execPath, [gyp, 'rebuild', '-j', 'max', `--nodedir=${nodedir}`], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
});
/** @type {Buffer[]} */
const output = [];
/** @param {Buffer} chunk */
const keep = (chunk) => void output.push(chunk);
child.stdout.on('data', keep);
child.stderr.on('data', keep);
const heartbeat = setInterval(() => say(`still building the native kernel (${seconds()} s) ...`), 30_000);
child.on('error', (error) => output.push(Buffer.from(`${String(error)}\n`)));
child.on('close', (code, signal) => {
  clearInterval(heartbeat);
  if (code === 0) {
    const built = join(root, 'build', 'Release', 'tensorcast_native.node');
    say(`native kernel built in ${seconds()} s: ${relative(process.cwd(), built) || built}`);
  } else {
    process.stderr.write(Buffer.concat(output));
    say(
      `building the native kernel failed after ${seconds()} s (${signal ?? `exit ${code}`}, node-gyp output above); the TypeScript kernel will run`,
    );
  }
  process.exitCode = 0;
});
