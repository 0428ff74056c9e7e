// The peak resident memory of a process, as the kernel counts it (Linux /proc), for memory-bound tests.

import { readFileSync } from 'node:fs';

/** VmHWM (the peak resident set) of process `pid`, in bytes. */
export function peakRssBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
