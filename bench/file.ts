// file suite: the executor reading from a file (page cache warm) against a plain sequential read of
// the same bytes into a pre-faulted buffer.

import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource } from '../src/bytes/file-source.js';
import { Materializer } from '../src/bytes/materialize.js';
import { buildCanonicalIndex } from '../src/layout/canonical-index.js';
import { compileProgram } from '../src/layout/program.js';
import { normalizeView } from '../src/layout/view.js';
import { fillPattern } from '../src/format/synthetic-model.js';
import { bestOf, result, type BenchResult } from './measure.js';

const ROWS = 16384;
const WIDTH = 10240; // bf16 [16384, 5120]: 160 MiB

/** Plain sequential read of `[start, start + length)` of `path` in 8 MiB reads. */
function plainRead(path: string, start: number, dest: Buffer): void {
  const fd = openSync(path, 'r');
  try {
    for (let at = 0; at < dest.length;) at += readSync(fd, dest, at, Math.min(8 << 20, dest.length - at), start + at);
  } finally {
    closeSync(fd);
  }
}

/** Runs the file suite. */
export async function fileSuite(repeats: number): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tensorcast-bench-'));
  const out: BenchResult[] = [];
  try {
    const path = join(dir, 'w.bin');
    const bytes = Buffer.allocUnsafeSlow(ROWS * WIDTH);
    fillPattern(bytes, 9);
    writeFileSync(path, bytes);
    const index = buildCanonicalIndex(
      [{ name: 'w', dtype: 'BF16', shape: [ROWS, WIDTH / 2], byteLength: ROWS * WIDTH, shard: 0, filePosition: 0 }],
      [],
    );
    const source = FileSource.fromFile(path, bytes.length);
    const m = new Materializer();
    const cases = [
      { name: 'whole tensor (identity)', spec: undefined },
      { name: 'TP=4 rank 1, dim 0 (column-parallel)', spec: { w: [[ROWS / 4, ROWS / 4], null] as const } },
      { name: 'TP=4 rank 1, dim 1 (row-parallel)', spec: { w: [null, [WIDTH / 8, WIDTH / 8]] as const } },
      { name: 'TP=2 rank 0, dim 1 (row-parallel)', spec: { w: [null, [0, WIDTH / 4]] as const } },
    ];
    try {
      for (const c of cases) {
        const program = compileProgram(normalizeView(index, c.spec));
        const dest = Buffer.alloc(program.totalBytes);
        const first = program.runs[0]!;
        const span =
          program.runs.reduce(
            (n, r) =>
              Math.max(
                n,
                r.kind === 'strided' ? r.src + (r.rows - 1) * r.stride + r.rowLength : r.kind === 'contiguous' ? r.src + r.length : 0,
              ),
            0,
          ) - (first.kind === 'pad' ? 0 : first.src);
        const ours = await bestOf(repeats, () => m.run(program, source, dest));
        const needed = Buffer.alloc(program.totalBytes);
        const base = await bestOf(repeats, () => plainRead(path, first.kind === 'pad' ? 0 : first.src, needed));
        out.push(result('file', c.name, 'executor', 'plain read, needed bytes', program.totalBytes, ours, base));
        if (span > program.totalBytes) {
          const spanBuf = Buffer.alloc(span);
          const spanT = await bestOf(repeats, () => plainRead(path, first.kind === 'pad' ? 0 : first.src, spanBuf));
          out.push(
            result(
              'file',
              c.name,
              'executor',
              'plain read, covering span',
              program.totalBytes,
              ours,
              spanT,
              `span ${(span / program.totalBytes).toFixed(1)}x the needed bytes`,
            ),
          );
        }
      }
    } finally {
      await source.close();
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
