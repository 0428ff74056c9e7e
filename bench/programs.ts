// Programs and byte spaces the benchmarks run on.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillPattern } from '../src/format/synthetic-model.js';
import { buildCanonicalIndex } from '../src/layout/canonical-index.js';
import { compileProgram, type ByteRangeProgram } from '../src/layout/program.js';
import { normalizeView } from '../src/layout/view.js';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** The repository root. */
export const REPO_ROOT = findRoot();

/**
 * A TP column slice: a U8 tensor of `rows` x (`rowBytes` x `tp`) and the program taking the first
 * `rowBytes` of every row (one strided run: `rows` rows, stride `rowBytes * tp`).
 */
export function stridedProgram(rows: number, rowBytes: number, tp: number): { program: ByteRangeProgram; canonical: Buffer } {
  const width = rowBytes * tp;
  const index = buildCanonicalIndex(
    [{ name: 'w', dtype: 'U8', shape: [rows, width], byteLength: rows * width, shard: 0, filePosition: 0 }],
    [],
  );
  const canonical = Buffer.allocUnsafeSlow(rows * width);
  fillPattern(canonical, 3);
  const program = compileProgram(normalizeView(index, { w: [null, [0, rowBytes]] }));
  return { program, canonical };
}
