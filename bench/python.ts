// python suite (issue 14, section 3): a TP=4 rank (rank 1) of a ~300 MB bf16 Llama-shaped model loaded into
// torch parameters by the Python client (shm mapped, files mapped, tcp), against the way engines load today
// (safetensors.safe_open(...).get_slice(name)[slices] on the same stored files for the same rank) and against
// a plain page-cache read of the rank's bytes (os.preadv of exactly its byte runs). Every path ends with the
// rank's bytes copied once into preallocated torch parameters (what an engine's weight loader does), so a
// mapping that is never touched does not count as loaded. All warm (a warm-up run each), one python process;
// the measuring is bench/python/bench_load.py (its docstring says what each path does). Targets: mapped
// (shm, files) >= 1x safe_open, tcp >= 0.5x safe_open.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/client/tensorcast-client.js';
import { spawnPrivateDaemon } from '../src/cli/spawn-daemon.js';
import { writeSyntheticModel, type SyntheticModelOptions } from '../src/format/synthetic-model.js';
import type { BenchResult } from './measure.js';

/** ~300 MB of bf16: 8 layers of hidden 1024 / intermediate 4096, a 16k vocabulary (embed + lm_head). */
const MODEL: SyntheticModelOptions = {
  hiddenSize: 1024,
  intermediateSize: 4096,
  numLayers: 8,
  numHeads: 16,
  numKvHeads: 4,
  vocabSize: 16384,
  shards: 3,
};
const KEY = 'bench:python:v1';
const SCRIPT = fileURLToPath(new URL('../../bench/python/bench_load.py', import.meta.url));
const MODULES = ['numpy', 'msgpack', 'google_crc32c', 'torch', 'safetensors'];

interface Timing {
  readonly best?: number;
  readonly median?: number;
  readonly error?: string;
}

/** The suite. */
export async function pythonSuite(repeats: number): Promise<BenchResult[]> {
  const python = process.env['TENSORCAST_PYTHON'] ?? 'python3';
  const probe = spawnSync(python, ['-c', MODULES.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8' });
  if (probe.status !== 0) {
    console.log(`python suite skipped: ${python} cannot import ${MODULES.join(', ')} (set TENSORCAST_PYTHON)`);
    return [];
  }
  const work = mkdtempSync(join(tmpdir(), 'tensorcast-bench-python-'));
  const modelDir = join(work, 'model');
  const dataDir = join(work, 'data');
  await writeSyntheticModel(modelDir, MODEL);
  const daemon = await spawnPrivateDaemon(dataDir, { importRoots: [work], memoryBudget: '4GiB' });
  try {
    const client = await connect({ url: daemon.controlUrl, tokenFile: join(dataDir, 'token') });
    try {
      await client.importModel(modelDir, { key: KEY });
    } finally {
      await client.close();
    }
    const r = spawnSync(
      python,
      [
        SCRIPT,
        '--url',
        daemon.controlUrl,
        '--token-file',
        join(dataDir, 'token'),
        '--key',
        KEY,
        '--tp',
        '4',
        '--rank',
        '1',
        '--repeats',
        String(repeats),
      ],
      { encoding: 'utf8', maxBuffer: 16 << 20, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
    );
    if (r.status !== 0) throw new Error(`bench_load.py failed (${r.status}): ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytes: number; results: Record<string, Timing> };
    return toResults(out.bytes, out.results);
  } finally {
    await daemon.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

function toResults(bytes: number, t: Record<string, Timing>): BenchResult[] {
  const rate = (x: Timing | undefined): number => (x?.best === undefined ? Number.NaN : bytes / x.best / 1e9);
  const out: BenchResult[] = [];
  // Every path ends with the rank's bytes in preallocated torch parameters (or the arena they are views
  // of), each byte written there once; what each reads on the way is in the label.
  const cases: [string, string, number][] = [
    ['shm', 'python load shm (mapped, CRC32C pass) + param copy', 1],
    ['files', 'python load files (mapped views) + param copy', 1],
    ['tcp', 'python load tcp (into a new buffer) + param copy', 0.5],
    ['shm_into', 'python load shm into= arena (CRC32C + copy per chunk)', 1],
    ['files_into', 'python load files into= arena (one copy)', 1],
    ['tcp_into', 'python load tcp into= arena (received in place)', 0.5],
  ];
  for (const [key, ours, target] of cases) {
    for (const [base, baseName] of [
      ['safe_open', 'safe_open get_slice (new tensor) + param copy'],
      ['page_cache', 'page-cache preadv of the rank into the params'],
    ] as const) {
      const o = rate(t[key]);
      const b = rate(t[base]);
      const gated = base === 'safe_open';
      out.push({
        suite: 'python',
        case: `tp4 rank1 ${key}`,
        ours,
        baseline: baseName,
        oursRate: o,
        baselineRate: b,
        ratio: o / b,
        unit: 'GB/s',
        bytes,
        ...(t[key]?.best === undefined ? {} : { seconds: t[key].best }),
        ...(t[key]?.error === undefined ? {} : { note: `failed: ${t[key].error}` }),
        ...(gated ? { target: `ratio >= ${target}`, met: o / b >= target } : {}),
      });
    }
  }
  // The two baselines against each other (not gated): how far the engine's way is from a bare read.
  const so = rate(t['safe_open']);
  const pc = rate(t['page_cache']);
  out.push({
    suite: 'python',
    case: 'tp4 rank1 safe_open',
    ours: 'safe_open get_slice (new tensor) + param copy',
    baseline: 'page-cache preadv of the rank into the params',
    oursRate: so,
    baselineRate: pc,
    ratio: so / pc,
    unit: 'GB/s',
    bytes,
    ...(t['safe_open']?.best === undefined ? {} : { seconds: t['safe_open'].best }),
  });
  return out;
}
