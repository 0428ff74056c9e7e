// Measurement helpers shared by the benchmark suites: best-of-N timing and result records.

import { performance } from 'node:perf_hooks';

/** One benchmark result: ours against a baseline measured in the same run. */
export interface BenchResult {
  readonly suite: string;
  readonly case: string;
  readonly ours: string;
  readonly baseline: string;
  /** Throughput of ours and of the baseline in GB/s (or ops/s for metadata). */
  readonly oursRate: number;
  readonly baselineRate: number;
  /** oursRate / baselineRate: above 1 means faster than the baseline. */
  readonly ratio: number;
  readonly unit: string;
  readonly note?: string;
  /** A target the ratio is held to (e.g. `ratio >= 0.90`) and whether this run met it. */
  readonly target?: string;
  readonly met?: boolean;
}

/** Runs `fn` `warmup` + `repeats` times and returns the best wall time in seconds. */
export async function bestOf(repeats: number, fn: () => unknown, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t);
  }
  return best / 1000;
}

/** Builds a result from bytes moved and the best times of both sides. */
export function result(
  suite: string,
  name: string,
  ours: string,
  baseline: string,
  bytes: number,
  oursSeconds: number,
  baselineSeconds: number,
  note?: string,
): BenchResult {
  const oursRate = bytes / oursSeconds / 1e9;
  const baselineRate = bytes / baselineSeconds / 1e9;
  return {
    suite,
    case: name,
    ours,
    baseline,
    oursRate,
    baselineRate,
    ratio: oursRate / baselineRate,
    unit: 'GB/s',
    ...(note === undefined ? {} : { note }),
  };
}

/** Prints one result line. */
export function printResult(r: BenchResult): void {
  const pad = (s: string, n: number): string => s.padEnd(n);
  console.log(
    `${pad(r.suite, 12)}${pad(r.case, 44)}${pad(r.ours, 22)}${r.oursRate.toFixed(2).padStart(8)} ${r.unit}  vs ${pad(r.baseline, 22)}${r.baselineRate.toFixed(2).padStart(8)} ${r.unit}  ratio ${r.ratio.toFixed(2)}${r.note ? `  (${r.note})` : ''}${r.target === undefined ? '' : `  [target ${r.target}: ${r.met === true ? 'met' : 'MISSED'}]`}`,
  );
}
