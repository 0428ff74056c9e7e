// Starts `tensorcast serve` as a child process and waits for its ready line: used by `demo` (so daemon and
// client run on separate event loops, as in production) and by the end-to-end test harness.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tcError } from '../core/errors.js';

/** A daemon running as a child process. */
export interface SpawnedDaemon {
  readonly controlUrl: string;
  readonly dataAddress: string;
  readonly daemonId: string;
  readonly child: ChildProcess;
  /** Everything the daemon wrote to stderr so far (its JSON log lines). */
  stderr(): string;
  /** SIGTERM, then wait for the exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Path of the CLI entry point next to this module. */
export const CLI_PATH = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * Runs `tensorcast serve ...args` and resolves once it printed `tensorcast ready`.
 *
 * @throws TC_ERR_UNAVAILABLE when it exits or stays silent for `timeoutMs`.
 */
export function spawnDaemon(args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<SpawnedDaemon> {
  // Node flags for the daemon's process (profiling a benchmark: `--cpu-prof --cpu-prof-dir=DIR`), which
  // NODE_OPTIONS does not take.
  const nodeArgs = (env['TENSORCAST_DAEMON_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '');
  const child = spawn(process.execPath, [...nodeArgs, CLI_PATH, 'serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(tcError('TC_ERR_UNAVAILABLE', `daemon did not become ready in ${timeoutMs} ms: ${err.slice(-2000)}`));
    }, timeoutMs);
    const early = (code: number | null): void => {
      clearTimeout(timer);
      reject(tcError('TC_ERR_UNAVAILABLE', `daemon exited with code ${code} before it was ready: ${err.slice(-2000)}`));
    };
    child.once('exit', early);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^tensorcast ready (\S+) data (\S+) daemon (\S+)/m.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      child.off('exit', early);
      resolve({
        controlUrl: m[1]!,
        dataAddress: m[2]!,
        daemonId: m[3]!,
        child,
        stderr: () => err,
        stop: async (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    });
  });
}

/** Options of {@link spawnPrivateDaemon}. */
export interface PrivateDaemonOptions {
  readonly importRoots?: readonly string[];
  readonly memoryBudget?: string;
  readonly logLevel?: string;
  readonly extraArgs?: readonly string[];
  /** Extra environment (fault injection in tests). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * A daemon of one's own: loopback on free ports, its own data directory and generated token (ignoring
 * TENSORCAST_TOKEN and TENSORCAST_TOKEN_FILE), for the demo, benchmarks and tests.
 */
export function spawnPrivateDaemon(dataDir: string, opts: PrivateDaemonOptions = {}): Promise<SpawnedDaemon> {
  const args = ['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--data-listen', '127.0.0.1:0', '--log-level', opts.logLevel ?? 'warn'];
  for (const root of opts.importRoots ?? []) args.push('--import-root', root);
  if (opts.memoryBudget !== undefined) args.push('--memory-budget', opts.memoryBudget);
  return spawnDaemon([...args, ...(opts.extraArgs ?? [])], {
    ...process.env,
    TENSORCAST_TOKEN: '',
    TENSORCAST_TOKEN_FILE: '',
    TENSORCAST_DAEMON: '',
    ...opts.env,
  });
}
