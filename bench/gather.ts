// gather suite: TP-slice materialization from memory (native and TypeScript kernels, direct gather vs
// block copy + pack) and from a file, against a C memcpy-gather baseline built on the fly.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Materializer } from '../src/bytes/materialize.js';
import { MemorySource } from '../src/bytes/memory-source.js';
import { FileSource } from '../src/bytes/file-source.js';
import { gatherNative } from '../src/bytes/gather-kernel.js';
import { bestOf, type BenchResult } from './measure.js';
import { stridedProgram, REPO_ROOT } from './programs.js';

const ROW_SIZES = [128, 512, 2048, 2560, 4096, 32768];
const OUTPUT_BYTES = 64 << 20;
const TP = 4;

function buildBaseline(dir: string): string | undefined {
  const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
  if (cc === undefined) return undefined;
  const exe = join(dir, 'gather_baseline');
  const r = spawnSync(cc, ['-O2', '-o', exe, join(REPO_ROOT, 'bench', 'c', 'gather_baseline.c')], { encoding: 'utf8' });
  return r.status === 0 && existsSync(exe) ? exe : undefined;
}

function versusC(name: string, ours: string, oursRate: number, cRate: number, note?: string): BenchResult {
  return {
    suite: 'gather',
    case: name,
    ours,
    baseline: 'C memcpy gather',
    oursRate,
    baselineRate: cRate,
    ratio: oursRate / cRate,
    unit: 'GB/s',
    ...(note === undefined ? {} : { note }),
  };
}

/** Runs the gather suite. */
export async function gatherSuite(repeats: number): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tensorcast-bench-'));
  const out: BenchResult[] = [];
  try {
    const baseline = buildBaseline(dir);
    if (baseline === undefined) {
      console.log('gather: no C compiler (cc/gcc/clang) found: the C memcpy-gather baseline is skipped');
      return out;
    }
    if (gatherNative === undefined) console.log('gather: native kernel not built; "native" rows run the TypeScript kernel');
    const variants = [
      { label: 'direct, native kernel', m: new Materializer() },
      { label: 'direct, TS kernel', m: new Materializer({ kernel: 'js' }) },
      { label: 'block copy+pack, native', m: new Materializer({ direct: { minRowBytes: Number.MAX_SAFE_INTEGER } }) },
    ];
    for (const rowBytes of ROW_SIZES) {
      const rows = Math.floor(OUTPUT_BYTES / rowBytes);
      const stride = rowBytes * TP;
      const c = spawnSync(baseline, [String(rowBytes), String(stride), String(rows), String(repeats + 2)], { encoding: 'utf8' });
      const cRate = Number(c.stdout.trim());
      const { program, canonical } = stridedProgram(rows, rowBytes, TP);
      const source = new MemorySource([canonical]);
      const dest = Buffer.alloc(program.totalBytes);
      for (const v of variants) {
        const t = await bestOf(repeats, () => v.m.run(program, source, dest));
        out.push(versusC(`memory, row ${rowBytes} B, stride ${stride}`, v.label, program.totalBytes / t / 1e9, cRate));
      }
      if (rowBytes === 2560 || rowBytes === 128 || rowBytes === 32768) {
        const path = join(dir, `src-${rowBytes}.bin`);
        writeFileSync(path, canonical);
        const file = FileSource.fromFile(path, canonical.length);
        try {
          const fileVariants = [
            { label: 'source gather (mapped)', m: new Materializer(), note: 'native: file pages mapped, only rows copied' },
            { label: 'block read + pack', m: new Materializer({ sourceGather: false }), note: `reads ${TP}x the delivered bytes` },
          ];
          for (const v of fileVariants) {
            const t = await bestOf(repeats, () => v.m.run(program, file, dest));
            out.push(
              versusC(`file (page cache), row ${rowBytes} B, stride ${stride}`, v.label, program.totalBytes / t / 1e9, cRate, v.note),
            );
          }
        } finally {
          await file.close();
          rmSync(path);
        }
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
