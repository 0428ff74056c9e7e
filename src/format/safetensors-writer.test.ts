import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { missingPython, pythonWith, runPython } from '../../test/helpers/python.js';
import { skipOrFail } from '../../test/helpers/require.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { DTYPES } from '../core/dtypes.js';
import { parseSafetensorsHeader } from './safetensors-header.js';
import { readSafetensorsFile } from './safetensors-file.js';
import {
  planSafetensors,
  saveSafetensors,
  SafetensorsFileWriter,
  serializeSafetensors,
  type TensorWithData,
} from './safetensors-writer.js';

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

test('writer: header bytes match the reference serializer (probed from safetensors 0.8.0)', () => {
  const one = (name: string, metadata?: Record<string, string>): string => {
    const out = serializeSafetensors([{ name, dtype: 'U8', shape: [1], data: new Uint8Array([120]) }], metadata ? { metadata } : {});
    const n = Number(out.readBigUInt64LE(0));
    return `${n}:${out.subarray(8, 8 + n).toString('utf8')}`;
  };
  assert.equal(one('a'), '56:{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}   ');
  assert.equal(one('aaaa'), '56:{"aaaa":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}');
  assert.equal(one('aaaaa'), '64:{"aaaaa":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}       ');
  assert.equal(one('é\n"\\/\u0001\u2028😀'), '80:{"é\\n\\"\\\\/\\u0001\u2028😀":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}      ');
  assert.equal(
    one('x', { format: 'pt', z: '1', a: '2' }),
    '104:{"__metadata__":{"format":"pt","z":"1","a":"2"},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}    ',
  );
  assert.equal(one('x', {}), '72:{"__metadata__":{},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} ');
});

test('writer: dtype order is descending enum order, then name', () => {
  const layout = planSafetensors(DTYPES.map((dtype, i) => ({ name: `t${String(i).padStart(2, '0')}`, dtype, shape: [8] })));
  assert.deepEqual(
    layout.tensors.map((t) => t.dtype),
    [
      'U64',
      'I64',
      'F64',
      'C64',
      'F32',
      'U32',
      'I32',
      'BF16',
      'F16',
      'U16',
      'I16',
      'F8_E5M2FNUZ',
      'F8_E4M3FNUZ',
      'F8_E8M0',
      'F8_E4M3',
      'F8_E5M2',
      'I8',
      'U8',
      'F6_E3M2',
      'F6_E2M3',
      'F4',
      'BOOL',
    ],
  );
  const byName = planSafetensors([
    { name: 'b', dtype: 'F32', shape: [1] },
    { name: 'a', dtype: 'F32', shape: [1] },
    { name: 'c', dtype: 'F64', shape: [1] },
  ]);
  assert.deepEqual(
    byName.tensors.map((t) => t.name),
    ['c', 'a', 'b'],
  );
});

test('writer: 4096 alignment pads the header with spaces and stays valid', () => {
  const out = serializeSafetensors([{ name: 'w', dtype: 'F32', shape: [3], data: bytes(12, 1) }], {
    metadata: { format: 'pt' },
    dataAlignment: 4096,
  });
  const h = parseSafetensorsHeader(out, out.length, 'aligned');
  assert.equal(h.dataStart, 4096);
  assert.deepEqual(out.subarray(4096), Buffer.from(bytes(12, 1)));
});

test('writer: byte-identical with the reference library for the same tensors', async (t) => {
  const py = pythonWith(['safetensors', 'numpy']);
  if (py === undefined) {
    skipOrFail(t, missingPython(['safetensors', 'numpy']));
    return;
  }
  const dir = tempDir(t);
  const tensors: TensorWithData[] = [
    { name: 'w', dtype: 'F16', shape: [3], data: bytes(6, 1) },
    { name: 'x', dtype: 'F64', shape: [1], data: bytes(8, 2) },
    { name: 'a', dtype: 'I8', shape: [2], data: bytes(2, 3) },
    { name: 'layer.0.weight', dtype: 'F32', shape: [4, 5], data: bytes(80, 4) },
    { name: 'scalar', dtype: 'I64', shape: [], data: bytes(8, 5) },
    { name: 'empty', dtype: 'F32', shape: [0, 3], data: new Uint8Array(0) },
    { name: 'b', dtype: 'U8', shape: [7], data: bytes(7, 6) },
  ];
  const ours = join(dir, 'ours.safetensors');
  await saveSafetensors(ours, tensors, { metadata: { format: 'pt' } });
  const script = `
import sys, numpy as np
from safetensors.numpy import save_file
raw = open(sys.argv[1], 'rb').read()
specs = [("w","<f2",[3]),("x","<f8",[1]),("a","i1",[2]),("layer.0.weight","<f4",[4,5]),("scalar","<i8",[]),("empty","<f4",[0,3]),("b","u1",[7])]
import json, struct
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8+n])
t = {}
for name, dt, shape in specs:
    b, e = h[name]["data_offsets"]
    t[name] = np.frombuffer(raw[8+n+b:8+n+e], dtype=dt).reshape(shape)
save_file(t, sys.argv[2], metadata={"format": "pt"})
`;
  const theirs = join(dir, 'theirs.safetensors');
  runPython(py, script, [ours, theirs]);
  assert.deepEqual(readFileSync(ours), readFileSync(theirs));
});

test('writer: abort leaves nothing at the path, commit renames into place', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'out.safetensors');
  const layout = planSafetensors([{ name: 'w', dtype: 'U8', shape: [4] }]);
  const w = await SafetensorsFileWriter.create(path, layout);
  await w.write(new Uint8Array([1, 2]));
  await w.abort();
  assert.equal(existsSync(path), false);
  assert.deepEqual(readdirSync(dir), []);
  const w2 = await SafetensorsFileWriter.create(path, layout);
  await w2.write(new Uint8Array([1, 2]));
  await assert.rejects(w2.commit(), /2 of 4 data bytes/);
  assert.deepEqual(readdirSync(dir), []);
  const w3 = await SafetensorsFileWriter.create(path, layout);
  await assert.rejects(w3.write(new Uint8Array(5)), { code: 'TC_ERR_INVALID_ARGUMENT' });
  await w3.write(new Uint8Array([1, 2, 3, 4]));
  await w3.commit();
  assert.deepEqual(readdirSync(dir), ['out.safetensors']);
  assert.equal((await readSafetensorsFile(path)).header.tensors[0]!.name, 'w');
});

test('writer: a tensor over 2 GiB in a file over 4 GiB', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'big.safetensors');
  const bigLen = 2 ** 31 + 4096; // > 2 GiB: needs split writes
  const big = Buffer.alloc(bigLen);
  big.fill(0xab, bigLen - 4096);
  const second = Buffer.alloc(2 ** 31 - 4096 + 8); // together > 4 GiB
  second[second.length - 1] = 0xcd;
  await saveSafetensors(path, [
    { name: 'big', dtype: 'U8', shape: [bigLen], data: big },
    { name: 'second', dtype: 'U8', shape: [second.length], data: second },
  ]);
  const info = await readSafetensorsFile(path);
  assert.ok(statSync(path).size > 2 ** 32);
  const [a, b] = info.header.tensors;
  assert.equal(a!.end - a!.begin, bigLen);
  const fh = await open(path, 'r');
  try {
    const probe = Buffer.alloc(1);
    await fh.read(probe, 0, 1, info.header.dataStart + a!.end - 1);
    assert.equal(probe[0], 0xab);
    await fh.read(probe, 0, 1, info.header.dataStart + b!.end - 1);
    assert.equal(probe[0], 0xcd);
  } finally {
    await fh.close();
  }
});
