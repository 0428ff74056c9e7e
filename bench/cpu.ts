// CPU cost of a measured operation: the daemon's user + system time from /proc/<pid>/stat (it runs as a
// child process) and this process's from process.cpuUsage(), as deltas around the operation, tallied into
// CPU seconds per GB moved.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Clock ticks per second of /proc's utime and stime (`getconf CLK_TCK`; 100 on Linux in practice). */
const TICKS_PER_SECOND = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** What the header line says about how CPU is measured. */
export const CPU_METHOD =
  `CPU = user+system seconds of the daemon process (utime+stime of /proc/<pid>/stat, all its threads, ${1000 / TICKS_PER_SECOND} ms ticks) ` +
  'and of this client process (process.cpuUsage(), us), deltas around each measured load, summed over all measured runs ' +
  'of a result and divided by the GB (1e9 bytes) they delivered';

/**
 * User + system CPU seconds in the text of a /proc/<pid>/stat (utime + stime, in clock ticks), or undefined
 * when the text has no such fields.
 */
export function parseProcStat(stat: string, ticksPerSecond = TICKS_PER_SECOND): number | undefined {
  // The command name (field 2) is in parentheses and may hold spaces and parentheses: count fields after the
  // last ')'. There, index 0 is field 3 (state), so utime (field 14) is index 11 and stime (field 15) index 12.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / ticksPerSecond : undefined;
}

/**
 * User + system CPU seconds `pid` has used so far (its live and exited threads), or undefined without
 * /proc (not Linux) or once the process is gone.
 */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/** CPU seconds of this process so far (user + system). */
function clientCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** One measured run: wall time and CPU of both sides. */
export interface CpuRun<T> {
  readonly value: T;
  readonly seconds: number;
  /** Undefined when the daemon's CPU could not be read. */
  readonly daemonCpuSeconds: number | undefined;
  readonly clientCpuSeconds: number;
}

/** Runs `fn` and measures its wall time, the CPU of the process `daemonPid` and of this process meanwhile. */
export async function withCpu<T>(daemonPid: number | undefined, fn: () => Promise<T>): Promise<CpuRun<T>> {
  const d0 = processCpuSeconds(daemonPid);
  const c0 = clientCpuSeconds();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const c1 = clientCpuSeconds();
  const d1 = processCpuSeconds(daemonPid);
  return { value, seconds, daemonCpuSeconds: d0 === undefined || d1 === undefined ? undefined : d1 - d0, clientCpuSeconds: c1 - c0 };
}

/** CPU seconds per GB over several runs: sums, so that runs shorter than a clock tick still add up. */
export class CpuTally {
  private bytes = 0;
  private daemonSeconds: number | undefined = 0;
  private clientSeconds = 0;
  runs = 0;

  /** Adds one run that delivered `bytes`. */
  add(run: CpuRun<unknown>, bytes: number): void {
    this.bytes += bytes;
    this.runs += 1;
    this.clientSeconds += run.clientCpuSeconds;
    this.daemonSeconds =
      run.daemonCpuSeconds === undefined || this.daemonSeconds === undefined ? undefined : this.daemonSeconds + run.daemonCpuSeconds;
  }

  /** Daemon CPU seconds per GB delivered (undefined without /proc or before any run). */
  get daemonPerGB(): number | undefined {
    return this.bytes === 0 || this.daemonSeconds === undefined ? undefined : this.daemonSeconds / (this.bytes / 1e9);
  }

  /** Client CPU seconds per GB delivered. */
  get clientPerGB(): number | undefined {
    return this.bytes === 0 ? undefined : this.clientSeconds / (this.bytes / 1e9);
  }
}
