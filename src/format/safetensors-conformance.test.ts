// Conformance: every case of test/fixtures/conformance-cases.ts through our reader, and (where python with
// safetensors is installed) through the reference library, comparing accept/reject.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CASES } from '../../test/fixtures/conformance-cases.js';
import { missingPython, pythonWith, runPython } from '../../test/helpers/python.js';
import { skipOrFail } from '../../test/helpers/require.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { isTensorcastError } from '../core/errors.js';
import { parseSafetensorsHeader } from './safetensors-header.js';
import { readSafetensorsFile } from './safetensors-file.js';

function verdict(bytes: Buffer): string {
  try {
    parseSafetensorsHeader(bytes, bytes.length, 'case.safetensors');
    return 'ok';
  } catch (error) {
    if (isTensorcastError(error)) return error.code;
    throw error;
  }
}

for (const c of CASES) {
  test(`conformance: ${c.name} -> ${c.expect}`, () => {
    assert.equal(verdict(c.bytes), c.expect);
  });
}

test('conformance: every rejection names the file', () => {
  for (const c of CASES.filter((x) => x.expect !== 'ok')) {
    try {
      parseSafetensorsHeader(c.bytes, c.bytes.length, 'named-file.safetensors');
      assert.fail(`${c.name} was accepted`);
    } catch (error) {
      assert.match((error as Error).message, /named-file\.safetensors/, c.name);
    }
  }
});

test('conformance: the file reader gives the same verdicts as the in-memory parser', async (t) => {
  const dir = tempDir(t);
  for (const [i, c] of CASES.entries()) {
    const path = join(dir, `${i}.safetensors`);
    writeFileSync(path, c.bytes);
    let got = 'ok';
    try {
      await readSafetensorsFile(path);
    } catch (error) {
      got = isTensorcastError(error) ? error.code : String(error);
    }
    assert.equal(got, c.expect, c.name);
  }
});

test('conformance: same accept/reject as the reference safetensors library', (t) => {
  const py = pythonWith(['safetensors']);
  if (py === undefined) {
    skipOrFail(t, missingPython(['safetensors']));
    return;
  }
  const dir = tempDir(t);
  CASES.forEach((c, i) => writeFileSync(join(dir, `${i}.safetensors`), c.bytes));
  const script = `
import sys, os
from safetensors import deserialize
d = sys.argv[1]
for i in range(int(sys.argv[2])):
    data = open(os.path.join(d, f"{i}.safetensors"), "rb").read()
    try:
        deserialize(data)
        print("ok")
    except Exception as e:
        print("error")
`;
  const verdicts = runPython(py, script, [dir, String(CASES.length)])
    .trim()
    .split('\n');
  CASES.forEach((c, i) => {
    const ours = c.expect === 'ok' ? 'ok' : 'error';
    assert.equal(verdicts[i], c.reference ?? ours, `reference verdict for '${c.name}'`);
  });
});
