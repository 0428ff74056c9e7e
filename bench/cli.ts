// cli suite: start-up of the tensorcast command (`--help`, `inspect` of a small file) against a bare
// `node -e 0` started the same way; a ratio near 1 means the CLI adds little to Node's own start-up.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bestOf, type BenchResult } from './measure.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

function run(args: readonly string[]): void {
  const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`bench cli: node ${args.join(' ')} exited ${r.status}`);
}

/** Runs the cli suite: processes started per second, ours against bare node. */
export async function cliSuite(repeats: number): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tensorcast-bench-cli-'));
  try {
    const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }));
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(header.length));
    const small = join(dir, 'small.safetensors');
    writeFileSync(small, Buffer.concat([size, header, Buffer.alloc(16)]));
    const bare = await bestOf(repeats, () => run(['-e', '0']));
    const cases: [string, string[]][] = [
      ['tensorcast --help', [CLI, '--help']],
      ['tensorcast inspect (1 tensor)', [CLI, 'inspect', small]],
    ];
    const out: BenchResult[] = [];
    for (const [name, args] of cases) {
      const ours = await bestOf(repeats, () => run(args));
      out.push({
        suite: 'cli',
        case: name,
        ours: `${(ours * 1000).toFixed(0)} ms a run`,
        baseline: `node -e 0 ${(bare * 1000).toFixed(0)} ms`,
        oursRate: 1 / ours,
        baselineRate: 1 / bare,
        ratio: bare / ours,
        unit: 'runs/s',
      });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
