import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { naiveSlice } from '../../test/helpers/naive-slice.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { REPO_ROOT } from '../../test/helpers/cli.js';
import type { Dtype } from '../core/dtypes.js';
import { buildCanonicalIndex, type CanonicalIndex } from '../layout/canonical-index.js';
import { compileProgram, programWindow, type ByteRangeProgram } from '../layout/program.js';
import { normalizeView, type ViewSpec } from '../layout/view.js';
import { FileSource } from './file-source.js';
import { gatherJs, gatherNative } from './gather-kernel.js';
import { MATERIALIZE_CHANNEL, type MaterializeStats } from './materialize-stats.js';
import { Materializer, materialize } from './materialize.js';
import { MemorySource } from './memory-source.js';
import diagnosticsChannel from 'node:diagnostics_channel';
import type { ByteSource } from './byte-source.js';

const DTYPE_OF: Record<number, Dtype> = { 1: 'U8', 2: 'BF16', 4: 'F32', 8: 'F64' };

interface Case {
  tensors: { shape: number[]; elem: number }[];
  boxes: [number, number][][];
}

const caseArb = fc
  .array(
    fc.record({ shape: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 4 }), elem: fc.constantFrom(1, 2, 4, 8) }),
    { minLength: 1, maxLength: 4 },
  )
  .chain((tensors) =>
    fc.record({
      tensors: fc.constant(tensors),
      boxes: fc.tuple(
        ...tensors.map((t) =>
          fc.tuple(
            ...t.shape.map((d) =>
              fc.integer({ min: 0, max: d }).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: d - s }))),
            ),
          ),
        ),
      ),
    }),
  ) as fc.Arbitrary<Case>;

function build(c: Case): { index: CanonicalIndex; canonical: Uint8Array; spec: ViewSpec } {
  const inputs = c.tensors.map((t, i) => ({
    name: `t${i}`,
    dtype: DTYPE_OF[t.elem]!,
    shape: t.shape,
    byteLength: t.shape.reduce((a, b) => a * b, 1) * t.elem,
    shard: 0,
    filePosition: 0,
  }));
  const index = buildCanonicalIndex(inputs, [{ file: 'x', fileByteLength: 0 }]);
  const canonical = Uint8Array.from({ length: index.totalBytes }, (_, i) => (i * 131 + 7) & 0xff);
  const spec: ViewSpec = Object.fromEntries(c.boxes.map((b, i) => [`t${i}`, b]));
  return { index, canonical, spec };
}

function expected(c: Case, index: CanonicalIndex, canonical: Uint8Array, program: ByteRangeProgram): Uint8Array {
  const out = new Uint8Array(program.totalBytes);
  for (const pt of program.tensors) {
    const i = Number(pt.name.slice(1));
    const t = index.byName.get(pt.name)!;
    out.set(naiveSlice(canonical.subarray(t.offset, t.offset + t.byteLength), t.shape, c.tensors[i]!.elem, c.boxes[i]!), pt.offset);
  }
  return out;
}

/** Why the native kernel should have loaded but did not, or undefined when its absence is acceptable. */
function nativeMissing(): string | undefined {
  if (gatherNative !== undefined || process.env['TENSORCAST_NATIVE'] === '0') return undefined;
  const built = join(REPO_ROOT, 'build', 'Release', 'tensorcast_native.node');
  if (existsSync(built))
    return `the native kernel ${built} exists but did not load (rebuild it: node scripts/build-native.mjs, or set TENSORCAST_NATIVE=0 to use the TypeScript kernel)`;
  if (process.env['TENSORCAST_REQUIRE_SERVICES'] === '1')
    return `the native kernel is not built (${built} is missing) and TENSORCAST_REQUIRE_SERVICES=1 requires it`;
  return undefined;
}

test('materialize: memory source, both kernels, equals naive slicing', async (t) => {
  const missing = nativeMissing();
  if (missing !== undefined) assert.fail(missing);
  if (gatherNative === undefined) t.diagnostic('SKIPPED in part: native kernel not loaded, only the TypeScript kernel is checked');
  await fc.assert(
    fc.asyncProperty(caseArb, async (c) => {
      const { index, canonical, spec } = build(c);
      const program = compileProgram(normalizeView(index, spec));
      const want = expected(c, index, canonical, program);
      for (const kernel of gatherNative === undefined ? (['js'] as const) : (['js', 'native'] as const)) {
        const out = new Uint8Array(program.totalBytes).fill(0xee);
        const stats = await new Materializer({ kernel }).run(program, new MemorySource([canonical]), out);
        assert.equal(stats.kernel, kernel, 'the kernel asked for is the kernel that ran');
        assert.deepEqual(out, want);
      }
      // Also from split memory segments (rows straddling segment ends).
      const cut = Math.floor(canonical.length / 2);
      const out2 = new Uint8Array(program.totalBytes);
      await materialize(program, new MemorySource([canonical.subarray(0, cut), canonical.subarray(cut)]), out2);
      assert.deepEqual(out2, want);
    }),
    { numRuns: 300 },
  );
});

test('materialize: file source through block, row and contiguous paths, and through windows', async (t) => {
  const dir = tempDir(t);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(caseArb, fc.integer({ min: 1, max: 64 }), async (c, windowBytes) => {
      const { index, canonical, spec } = build(c);
      const path = join(dir, `c${n++}.bin`);
      writeFileSync(path, canonical);
      const source = FileSource.fromFile(path, canonical.length);
      try {
        const program = compileProgram(normalizeView(index, spec));
        const want = expected(c, index, canonical, program);
        const variants = [
          new Materializer({ blockTargetBytes: 48, readChunkBytes: 16, sourceGather: false }),
          new Materializer({ blockTargetBytes: 48, readChunkBytes: 16 }),
          new Materializer({ maxAmplification: 0, readChunkBytes: 5, concurrency: 3, sourceGather: false }),
          new Materializer({ rowReadMinBytes: 1, sourceGather: false }),
          new Materializer(),
        ];
        for (const m of variants) {
          const out = new Uint8Array(program.totalBytes).fill(0xee);
          await m.run(program, source, out);
          assert.deepEqual(out, want);
        }
        const windowed = new Uint8Array(program.totalBytes);
        for (let s = 0; s < program.totalBytes; s += windowBytes) {
          const e = Math.min(program.totalBytes, s + windowBytes);
          await materialize(programWindow(program, s, e), source, windowed.subarray(s, e));
        }
        assert.deepEqual(windowed, want);
      } finally {
        await source.close();
      }
    }),
    { numRuns: 150 },
  );
});

test('materialize: thresholds choose direct gather or block pack; stats are exact and published', async () => {
  // [64, 32] U8, take columns 8..16 of every row: 64 rows of 8 bytes, stride 32.
  const index = buildCanonicalIndex(
    [{ name: 'w', dtype: 'U8', shape: [64, 32], byteLength: 2048, shard: 0, filePosition: 0 }],
    [{ file: 'x', fileByteLength: 0 }],
  );
  const canonical = Uint8Array.from({ length: 2048 }, (_, i) => i & 0xff);
  const program = compileProgram(normalizeView(index, { w: [null, [8, 8]] }));
  assert.deepEqual(program.runs, [{ kind: 'strided', dst: 0, src: 8, rowLength: 8, stride: 32, rows: 64 }]);
  const seen: MaterializeStats[] = [];
  const onStats = (m: unknown): void => void seen.push(m as MaterializeStats);
  diagnosticsChannel.subscribe(MATERIALIZE_CHANNEL, onStats);
  try {
    const out = new Uint8Array(512);
    const direct = await materialize(program, new MemorySource([canonical]), out);
    assert.equal(direct.runs.directGather, 1);
    assert.equal(direct.directBytes, 512);
    assert.equal(direct.amplification, 1);
    const packed = await new Materializer({ direct: { minRowBytes: 4096 } }).run(program, new MemorySource([canonical]), out);
    assert.equal(packed.runs.blockGather, 1);
    assert.equal(packed.directBytes, 63 * 32 + 8);
    assert.equal(seen.length, 2);
    assert.equal(seen[1], packed);
  } finally {
    diagnosticsChannel.unsubscribe(MATERIALIZE_CHANNEL, onStats);
  }
});

test('materialize: a short read is TC_ERR_SHORT_READ, never a garbage tail', async () => {
  const index = buildCanonicalIndex(
    [{ name: 'w', dtype: 'U8', shape: [100], byteLength: 100, shard: 0, filePosition: 0 }],
    [{ file: 'x', fileByteLength: 0 }],
  );
  const program = compileProgram(normalizeView(index));
  const truncated: ByteSource = {
    byteLength: 100,
    read: (offset, dest) => Promise.resolve(Math.max(0, Math.min(dest.length, 60 - offset))),
  };
  await assert.rejects(materialize(program, truncated, new Uint8Array(100)), { code: 'TC_ERR_SHORT_READ' });
  const strided = compileProgram(
    normalizeView(buildCanonicalIndex([{ name: 'w', dtype: 'U8', shape: [10, 10], byteLength: 100, shard: 0, filePosition: 0 }], []), {
      w: [null, [0, 5]],
    }),
  );
  await assert.rejects(materialize(strided, truncated, new Uint8Array(50)), { code: 'TC_ERR_SHORT_READ' });
  await assert.rejects(materialize(program, truncated, new Uint8Array(99)), { code: 'TC_ERR_DESTINATION_SIZE' });
});

test('materialize: a file that shrank under the source gives TC_ERR_SHORT_READ', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'f.bin');
  writeFileSync(path, new Uint8Array(50));
  const source = FileSource.fromFile(path, 100);
  const index = buildCanonicalIndex([{ name: 'w', dtype: 'U8', shape: [100], byteLength: 100, shard: 0, filePosition: 0 }], []);
  const grid = buildCanonicalIndex([{ name: 'g', dtype: 'U8', shape: [10, 10], byteLength: 100, shard: 0, filePosition: 0 }], []);
  const strided = compileProgram(normalizeView(grid, { g: [null, [2, 3]] }));
  try {
    await assert.rejects(materialize(compileProgram(normalizeView(index)), source, new Uint8Array(100)), { code: 'TC_ERR_SHORT_READ' });
    for (const sourceGather of [true, false]) {
      await assert.rejects(new Materializer({ sourceGather }).run(strided, source, new Uint8Array(30)), { code: 'TC_ERR_SHORT_READ' });
    }
  } finally {
    await source.close();
  }
});

const GATHER_CASES = [
  [1, 3, 100, 1],
  [4, 8, 64, 0],
  [6, 10, 50, 3],
  [128, 256, 15, 4],
  [300, 301, 13, 2],
  [64, 64, 60, 7],
  [64, 128, 30, 8],
  [4, 12, 300, 0],
] as const;

/** Checks one kernel against a byte-by-byte copy written here, and its bounds check. */
function checkKernel(name: string, kernel: typeof gatherJs): void {
  const src = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
  // Destination offsets 0 and 4 with 4-byte multiples take the word-copy path; 5 the byte path.
  for (const [rowLength, stride, rows, off] of GATHER_CASES)
    for (const at of [0, 4, 5]) {
      const got = new Uint8Array(rowLength * rows + 10).fill(0xee);
      kernel(got, at, src, off, rowLength, stride, rows);
      const want = new Uint8Array(rowLength * rows + 10).fill(0xee);
      for (let r = 0; r < rows; r++) for (let b = 0; b < rowLength; b++) want[at + r * rowLength + b] = src[off + r * stride + b]!;
      assert.deepEqual(got, want, `${name} kernel: rowLength ${rowLength}, stride ${stride}, rows ${rows}, offset ${off}, at ${at}`);
    }
  assert.throws(() => kernel(new Uint8Array(10), 0, src, 4090, 10, 10, 1), Error, `${name} kernel: source row past the end`);
  assert.throws(() => kernel(new Uint8Array(10), 5, src, 0, 10, 10, 1), Error, `${name} kernel: destination past the end`);
}

test('gather kernel (TypeScript): rows equal a byte-by-byte copy; out-of-range rows are rejected', () => {
  checkKernel('TypeScript', gatherJs);
});

test('gather kernel (native): rows equal a byte-by-byte copy; absent when expected is a failure', (t) => {
  const missing = nativeMissing();
  if (missing !== undefined) assert.fail(missing);
  if (gatherNative === undefined) {
    t.skip(
      process.env['TENSORCAST_NATIVE'] === '0'
        ? 'SKIPPED: TENSORCAST_NATIVE=0 disables the native kernel'
        : 'SKIPPED: the native kernel is not built (build/Release/tensorcast_native.node); only the TypeScript kernel was checked',
    );
    return;
  }
  checkKernel('native', gatherNative);
});
