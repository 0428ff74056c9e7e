// `pip install ./python` in a fresh venv with only numpy, msgpack and google-crc32c from the package index
// (the install contract): the package installs, pulls no other dependency, imports without torch
// (and says how to get it when a torch result is asked for), and loads a TP rank over the data plane
// byte-identical to the TypeScript SDK. A python3 without venv/pip, or no reachable package index for the
// three dependencies, skips loudly (a failure under TENSORCAST_REQUIRE_SERVICES=1); a package that does not
// install once its dependencies did is a failure.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemonWithModel } from '../harness/daemon.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { skipOrFail } from '../helpers/require.js';
import { tempDir } from '../helpers/tmp.js';

const DEPENDENCIES = ['numpy', 'msgpack', 'google-crc32c'];

function run(exe: string, args: readonly string[], cwd: string, timeoutMs = 600_000): { code: number | null; out: string } {
  const r = spawnSync(exe, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, PYTHONPATH: '', PIP_DISABLE_PIP_VERSION_CHECK: '1' },
  });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

test('pip install ./python in a fresh venv: only numpy, msgpack, google-crc32c; loads without torch', async (t) => {
  const base = process.env['TENSORCAST_PIP_PYTHON'] ?? 'python3';
  const dir = tempDir(t, 'tensorcast-venv-');
  const venv = join(dir, 'venv');
  const made = run(base, ['-m', 'venv', venv], dir);
  if (made.code !== 0) return skipOrFail(t, `${base} -m venv failed (no venv/ensurepip for this python?): ${made.out.slice(-800)}`);
  const py = join(venv, 'bin', 'python');
  // The dependencies (and the build backend) from the index first: failing here means no reachable index.
  const deps = run(py, ['-m', 'pip', 'install', ...DEPENDENCIES, 'setuptools>=61'], dir);
  if (deps.code !== 0)
    return skipOrFail(t, `pip cannot install ${DEPENDENCIES.join(', ')} from the package index: ${deps.out.slice(-800)}`);
  // From a copy: setuptools builds in the source folder (build/, *.egg-info), which must not be the checkout.
  const source = join(dir, 'python');
  cpSync(join(REPO_ROOT, 'python'), source, { recursive: true, filter: (p) => !/\/(build|tests|__pycache__|[^/]*\.egg-info)$/.test(p) });
  const pkg = run(py, ['-m', 'pip', 'install', source], dir);
  assert.equal(pkg.code, 0, `pip install ./python failed:\n${pkg.out.slice(-4000)}`);

  // Nothing but the three dependencies (and the venv's own pip/setuptools) came with it.
  const list = run(py, ['-m', 'pip', 'list', '--format', 'json'], dir);
  const names = (JSON.parse(list.out.split('\n')[0]!) as { name: string }[]).map((p) => p.name.toLowerCase()).sort();
  assert.deepEqual(
    names.filter((n) => !['pip', 'setuptools', 'wheel'].includes(n)),
    ['google-crc32c', 'msgpack', 'numpy', 'tensorcast'],
  );

  // In another directory than the repository, so the installed package is the one imported.
  const { model, daemon, client } = await startDaemonWithModel(t);
  await client.importModel(model, { key: 'model:pip:v1' });
  const ts = await client.load('model:pip:v1', { tp: { size: 2, rank: 1 } });
  const script = `
import hashlib, sys, tensorcast
assert tensorcast.__file__.startswith(sys.prefix), tensorcast.__file__
try:
    import torch
    raise SystemExit("torch is importable in the fresh venv")
except ImportError:
    pass
with tensorcast.Client(sys.argv[1], sys.argv[2]) as c:
    r = c.load("model:pip:v1", tp=(2, 1), transport="tcp")
    h = hashlib.sha256()
    for name, a in r.items():
        h.update(a.tobytes())
    print(h.hexdigest())
    try:
        c.load("model:pip:v1", tp=(2, 1), transport="tcp", as_torch=True)
        raise SystemExit("as_torch without torch did not fail")
    except tensorcast.InvalidArgumentError as e:
        assert "pip install torch" in str(e), str(e)
`;
  const loaded = run(py, ['-c', script, daemon.controlUrl, daemon.token], dir, 120_000);
  assert.equal(loaded.code, 0, loaded.out);
  const want = createHash('sha256');
  for (const tensor of ts.tensors) want.update(tensor.data);
  assert.equal(loaded.out.trim().split('\n')[0], want.digest('hex'));
});
