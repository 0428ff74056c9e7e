// Starts real daemons as separate processes (`tensorcast serve` on free ports, a temporary data directory)
// for end-to-end tests, and stops them when the test ends.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { spawnPrivateDaemon, type SpawnedDaemon } from '../../src/cli/spawn-daemon.js';
import { resolveConfig } from '../../src/daemon/config.js';

/** A daemon started for a test. */
export interface TestDaemon extends SpawnedDaemon {
  readonly dataDir: string;
  readonly tokenFile: string;
  readonly token: string;
  /** Flags a CLI client command needs to reach this daemon. */
  readonly clientArgs: readonly string[];
}

/** Options of {@link startDaemon}. */
export interface StartOptions {
  /** Reuse a data directory (restart tests). */
  readonly dataDir?: string;
  readonly extraArgs?: readonly string[];
}

/** Starts a daemon; it is killed and its data directory removed after the test (unless `dataDir` was given). */
export async function startDaemon(t: TestContext, opts: StartOptions = {}): Promise<TestDaemon> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'tensorcast-daemon-'));
  const d = await spawnPrivateDaemon(dataDir, { logLevel: 'info', extraArgs: opts.extraArgs ?? [] });
  t.after(async () => {
    await d.stop('SIGKILL');
    if (opts.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    // A killed daemon cannot remove its shared-memory folder; do it here.
    rmSync(resolveConfig([{ dataDir }]).shmDir, { recursive: true, force: true });
  });
  const tokenFile = join(dataDir, 'token');
  return {
    ...d,
    dataDir,
    tokenFile,
    token: readFileSync(tokenFile, 'utf8').trim(),
    clientArgs: ['--daemon', d.controlUrl, '--token-file', tokenFile],
  };
}
