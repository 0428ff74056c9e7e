// Runs an ES module body in a separate node process (a producer or consumer of an end-to-end test).

import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Runs `script` (an ES module body; `process.argv.slice(1)` are `args`) in a node process and resolves with
 * its stdout lines, or rejects with its exit code and stderr.
 *
 * @example const lines = await runNode(`console.log(process.argv[1])`, ['hi']);
 */
export function runNode(script: string, args: readonly string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawnNode(script, args);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out.split('\n').filter((l) => l !== '')) : reject(new Error(`exit ${code}: ${err}`)),
    );
  });
}

/** Starts `script` in a node process with piped stdout/stderr (for tests that kill it). */
export function spawnNode(script: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A module specifier of `path` (relative to `base`, an import.meta.url) to import from a script of {@link runNode}. */
export function moduleUrl(path: string, base: string): string {
  return JSON.stringify(new URL(path, base).href);
}
