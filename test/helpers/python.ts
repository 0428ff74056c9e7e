// Finds a python3 with given modules (numpy, safetensors, torch, transformers) for cross-checks against the
// reference implementations. Tests that use it call skipOrFail (helpers/require.ts) where it is absent:
// a loud skip, or a failure under TENSORCAST_REQUIRE_SERVICES=1.

import { spawnSync } from 'node:child_process';

const cache = new Map<string, string | undefined>();

/** The python executable when it imports every module in `modules`, else undefined. */
export function pythonWith(modules: readonly string[]): string | undefined {
  const key = modules.join(',');
  if (cache.has(key)) return cache.get(key);
  const exe = process.env['TENSORCAST_PYTHON'] ?? 'python3';
  const r = spawnSync(exe, ['-c', modules.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8' });
  const found = r.status === 0 ? exe : undefined;
  cache.set(key, found);
  return found;
}

/** The reason to print when python with `modules` is missing: which python was tried and how to get one. */
export function missingPython(modules: readonly string[]): string {
  const exe = process.env['TENSORCAST_PYTHON'] ?? 'python3';
  return (
    `needs python3 with ${modules.join(', ')} for the reference cross-check; ${exe} cannot import them ` +
    `(pip install ${modules.join(' ')}, or point TENSORCAST_PYTHON at a python that has them)`
  );
}

/** Runs a python script; returns stdout, throws with stderr on failure. */
export function runPython(exe: string, script: string, args: readonly string[] = [], input?: string): string {
  const r = spawnSync(exe, ['-c', script, ...args], { encoding: 'utf8', input, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
