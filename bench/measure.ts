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
  /** Bytes one run of ours moved. */
  readonly bytes?: number;
  /** Best wall time of one run of ours, in seconds. */
  readonly seconds?: number;
  /** Data-plane connections (TCP streams) ours used. */
  readonly streams?: number;
  /** How the bytes were produced (a load's `stats.source`: replica_hit, materialized, streamed). */
  readonly source?: string;
  /**
   * CPU seconds per GB (1e9 bytes) delivered, of the daemon process and of the client process, summed
   * over `cpuRuns` measured runs (bench/cpu.ts).
   */
  readonly daemonCpuSecPerGB?: number;
  readonly clientCpuSecPerGB?: number;
  readonly cpuRuns?: number;
  /** The parts of a composite baseline (e.g. `baselineRate` = the lower of link and materialization), in `unit`. */
  readonly baselines?: Readonly<Record<string, number>>;
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

/** Column widths of the printed lines. */
export interface ResultWidths {
  readonly suite: number;
  readonly name: number;
  readonly ours: number;
  readonly baseline: number;
}

const DEFAULT_WIDTHS: ResultWidths = { suite: 12, name: 44, ours: 22, baseline: 22 };

/** CPU seconds per GB as printed: two decimals, or n/a. */
const cpu = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toFixed(2));

/** Prints one result line. */
export function printResult(r: BenchResult, w: ResultWidths = DEFAULT_WIDTHS): void {
  const pad = (s: string, n: number): string => s.padEnd(n);
  const cost =
    r.daemonCpuSecPerGB === undefined && r.clientCpuSecPerGB === undefined
      ? ''
      : `  cpu s/GB daemon ${cpu(r.daemonCpuSecPerGB)} client ${cpu(r.clientCpuSecPerGB)}`;
  console.log(
    `${pad(r.suite, w.suite)}${pad(r.case, w.name)}${pad(r.ours, w.ours)}${r.oursRate.toFixed(2).padStart(8)} ${r.unit}  vs ${pad(r.baseline, w.baseline)}${r.baselineRate.toFixed(2).padStart(8)} ${r.unit}  ratio ${r.ratio.toFixed(2)}${cost}${r.target === undefined ? '' : `  [target ${r.target}: ${r.met === true ? 'met' : 'MISSED'}]`}${r.note ? `  (${r.note})` : ''}`,
  );
}

/** Prints results one line each, the columns as wide as the batch needs (at least the default widths). */
export function printResults(rs: readonly BenchResult[]): void {
  const widest = (f: (r: BenchResult) => string, min: number): number => Math.max(min, ...rs.map((r) => f(r).length + 2));
  const w: ResultWidths = {
    suite: widest((r) => r.suite, DEFAULT_WIDTHS.suite),
    name: widest((r) => r.case, DEFAULT_WIDTHS.name),
    ours: widest((r) => r.ours, DEFAULT_WIDTHS.ours),
    baseline: widest((r) => r.baseline, DEFAULT_WIDTHS.baseline),
  };
  for (const r of rs) printResult(r, w);
}
