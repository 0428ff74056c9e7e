// Models in connectors, cross-checked with the reference libraries (python: torch, safetensors,
// transformers). A real transformers model (test/fixtures/make_transformers_model.py) is imported into a
// daemon and pushed with `tensorcast push` to Redis and to the S3-compatible test server. A plain copy of
// every object to disk (`tensorcast pull-files --allow '*'`) loads with transformers with the same weights
// (test/fixtures/check_transformers_dir.py); the pushed model, imported in full on a second daemon and
// lazily on a third, loads per TP rank of 1, 2 and 4 byte-identical to torch slicing of the original
// (test/fixtures/check_slices.py).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { redisConnectorUrl, s3ConnectorUrl } from '../harness/services.js';
import { fixture, runCli } from '../helpers/cli.js';
import { missingPython, pythonWith } from '../helpers/python.js';
import { skipOrFail } from '../helpers/require.js';
import { tempDir } from '../helpers/tmp.js';

const MODULES = ['torch', 'transformers', 'safetensors'] as const;

const BACKENDS: [string, (t: TestContext) => Promise<string | undefined>][] = [
  ['redis', redisConnectorUrl],
  ['s3', s3ConnectorUrl],
];

/** Runs `tensorcast ...args` (against daemon `d` when given); fails the test on a non-zero exit. */
async function cli(d: TestDaemon | undefined, ...args: string[]): Promise<string> {
  const r = await runCli([...args, ...(d?.clientArgs ?? [])]);
  assert.equal(r.code, 0, `tensorcast ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Runs a fixture script with python; fails the test with its output unless it exits 0. */
function runFixture(py: string, script: string, args: readonly string[]): string {
  const r = spawnSync(py, [fixture(script), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${script} ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

test('push to Redis and S3: a plain copy loads with transformers; full and lazy imports give TP 1/2/4 ranks equal to torch slicing', async (t) => {
  const py = pythonWith(MODULES);
  if (py === undefined) {
    skipOrFail(t, missingPython(MODULES));
    return;
  }
  const root = tempDir(t);
  const original = join(root, 'hf');
  runFixture(py, 'make_transformers_model.py', [original]);
  // One daemon pushes, a second imports in full, a third lazily; each backend gets keys of its own.
  const source = await startDaemon(t, { extraArgs: ['--import-root', root] });
  const full = await startDaemon(t);
  const lazy = await startDaemon(t);
  await cli(source, 'import', original, '--key', 'hf');

  for (const [name, freshUrl] of BACKENDS) {
    await t.test(name, async (st) => {
      const url = await freshUrl(st);
      if (url === undefined) return;
      await cli(source, 'push', 'hf', url);

      // A plain copy of every object (no daemon involved), loaded by transformers.
      const copy = join(tempDir(st), 'copy');
      await cli(undefined, 'pull-files', url, copy, '--allow', '*');
      assert.match(runFixture(py, 'check_transformers_dir.py', [original, copy]), /^ok \d+/);

      // Imported in full and lazily; every rank of TP 1, 2 and 4 from both, checked in one python run.
      const key = `hf-${name}`;
      await cli(full, 'import', url, '--key', key);
      await cli(lazy, 'import', url, '--key', key, '--lazy');
      const outs = tempDir(st);
      const triples: string[] = [];
      for (const [who, d] of [
        ['full', full],
        ['lazy', lazy],
      ] as const) {
        for (const size of [1, 2, 4]) {
          for (let rank = 0; rank < size; rank++) {
            const out = join(outs, `${who}-tp${size}-rank${rank}.safetensors`);
            await cli(d, 'load', key, '--tp-size', String(size), '--tp-rank', String(rank), '--out', out);
            triples.push(out, String(rank), String(size));
          }
        }
      }
      assert.equal(triples.length, 2 * 7 * 3);
      // check_slices.py MODEL OUT tp RANK SIZE [OUT RANK SIZE ...]
      const [first, ...rest] = triples;
      runFixture(py, 'check_slices.py', [original, first!, 'tp', ...rest]);
    });
  }
});
