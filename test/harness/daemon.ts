// Starts real daemons as separate processes (`tensorcast serve` on free ports, a temporary data directory)
// for end-to-end tests, and stops them when the test ends.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { spawnPrivateDaemon, type SpawnedDaemon } from '../../src/cli/spawn-daemon.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { connect, type TensorcastClient } from '../../src/client/tensorcast-client.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { tempDir } from '../helpers/tmp.js';

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
  /** Extra environment for the daemon process (fault injection). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts a daemon; it is killed and its data directory removed after the test (unless `dataDir` was given). */
export async function startDaemon(t: TestContext, opts: StartOptions = {}): Promise<TestDaemon> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'tensorcast-daemon-'));
  const d = await spawnPrivateDaemon(dataDir, {
    logLevel: 'info',
    extraArgs: opts.extraArgs ?? [],
    // Test daemons allocate a small shm reserve at start (the default is an eighth of the budget, up to
    // 1 GiB, before the daemon serves); a test of the reserve says so with --shm-reserve.
    env: { TENSORCAST_SHM_RESERVE: '16MiB', ...opts.env },
  });
  t.after(async () => {
    await d.stop('SIGKILL');
    if (opts.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    // A killed daemon cannot remove its shared-memory folder; do it here.
    rmSync(resolveConfig([{ dataDir }]).shmDir, { recursive: true, force: true });
  });
  const i = (opts.extraArgs ?? []).indexOf('--token-file');
  const tokenFile = i >= 0 ? opts.extraArgs![i + 1]! : join(dataDir, 'token');
  return {
    ...d,
    dataDir,
    tokenFile,
    token: readFileSync(tokenFile, 'utf8').trim(),
    clientArgs: ['--daemon', d.controlUrl, '--token-file', tokenFile],
  };
}

/** A daemon with a tiny Llama model on disk under its import root, and an SDK client connected to it. */
export interface DaemonWithModel {
  /** The temporary folder holding the model (the daemon's import root). */
  readonly dir: string;
  /** The model directory. */
  readonly model: string;
  readonly daemon: TestDaemon;
  readonly client: TensorcastClient;
}

/** Writes a tiny Llama model, starts a daemon that may import it in place, and connects a client. */
export async function startDaemonWithModel(t: TestContext, opts: StartOptions = {}): Promise<DaemonWithModel> {
  const dir = tempDir(t);
  const model = join(dir, 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  const daemon = await startDaemon(t, { ...opts, extraArgs: ['--import-root', dir, ...(opts.extraArgs ?? [])] });
  const client = await connect({ url: daemon.controlUrl, token: daemon.token });
  t.after(() => client.close());
  return { dir, model, daemon, client };
}
