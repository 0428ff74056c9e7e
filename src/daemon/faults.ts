// Fault injection for tests and benchmarks, from the environment (never set in production): slows the
// steps that are too fast to hit on purpose otherwise (a source's export build, frames sent to peers),
// so a test can kill a source mid-transfer or run a deadline out during a prepare deterministically.

/** The faults this daemon injects. */
export interface Faults {
  /** Extra time every derived-view export build takes (ms). */
  readonly exportBuildDelayMs: number;
  /** Extra time before each request from another daemon is served (ms). */
  readonly peerServeDelayMs: number;
}

/** Reads TENSORCAST_FAULT_EXPORT_BUILD_DELAY_MS and TENSORCAST_FAULT_PEER_SERVE_DELAY_MS (default 0). */
export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): Faults {
  const ms = (name: string): number => {
    const v = Number(env[name] ?? '0');
    return Number.isSafeInteger(v) && v > 0 ? v : 0;
  };
  return {
    exportBuildDelayMs: ms('TENSORCAST_FAULT_EXPORT_BUILD_DELAY_MS'),
    peerServeDelayMs: ms('TENSORCAST_FAULT_PEER_SERVE_DELAY_MS'),
  };
}

/** Waits `ms` (no timer for 0). */
export function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
