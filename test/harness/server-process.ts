// Runs a service binary (redis-server, postgres) for tests under a small bash watchdog that stops it when
// our end of its stdin closes: on stop(), and also when the test process exits or is killed, so no server
// outlives the tests that started it. Also: free ports, PATH lookup, bounded readiness waits.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, openSync, readFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// $1: the signal that stops the server; $2: a directory to remove once it exited ('' for none); the rest: its
// command. fd 3 keeps our pipe (a background job's stdin would be /dev/null); the reader signals the server
// at EOF; the script exits with the server.
const WATCHDOG = `sig=$1; dir=$2; shift 2
exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
{ while read -r _ <&3; do :; done; kill -s "$sig" "$pid" 2>/dev/null; } &
reader=$!
wait "$pid"; code=$?
kill "$reader" 2>/dev/null
[ -n "$dir" ] && rm -rf -- "$dir"
exit $code`;

/** A server process under the watchdog. */
export interface WatchedProcess {
  /** Resolves with the exit code once the server (and its watchdog) exited. */
  readonly exited: Promise<number | null>;
  /** Stops the server (its stop signal) and waits for it to exit. */
  stop(): Promise<void>;
  /** The server's output so far (for error messages). */
  log(): string;
}

/** Options of {@link spawnWatched}. */
export interface SpawnWatchedOptions {
  /** The server's stdout and stderr go here. */
  readonly logFile: string;
  /** The signal that stops the server cleanly (postgres: INT, a fast shutdown). */
  readonly stopSignal: 'TERM' | 'INT';
  /** Run as this user through `runuser -u USER --` (postgres refuses to run as root). */
  readonly asUser?: string;
  /** A directory the watchdog removes once the server exited (the server's files outlive the test process). */
  readonly removeWhenDone?: string;
}

/** Starts `command` under the watchdog; the test process does not wait for it to exit. */
export function spawnWatched(command: readonly string[], opts: SpawnWatchedOptions): WatchedProcess {
  const out = openSync(opts.logFile, 'a');
  const argv = ['bash', '-c', WATCHDOG, 'watchdog', opts.stopSignal, opts.removeWhenDone ?? '', ...command];
  const [file, ...args] = opts.asUser === undefined ? argv : ['runuser', '-u', opts.asUser, '--', ...argv];
  const child: ChildProcess = spawn(file!, args, { stdio: ['pipe', out, out] });
  closeSync(out);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  // Neither the process nor the pipe keeps the test process alive; when it exits, the pipe closes.
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.stdin?.on('error', () => undefined);
  return {
    exited,
    async stop() {
      child.ref();
      child.stdin?.end();
      await exited;
      child.unref();
    },
    log: () => {
      try {
        return readFileSync(opts.logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The path of executable `name` on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Polls `ready` until it resolves true; fails when `proc` exits first or after `timeoutMs`, with the
 * server's log in the message.
 */
export async function waitReady(what: string, proc: WatchedProcess, ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  let gone = false;
  void proc.exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${what} exited before it was ready:\n${proc.log().slice(-2000)}`);
    if (await ready().catch(() => false)) return;
    await sleep(50);
  }
  await proc.stop();
  throw new Error(`${what} was not ready within ${timeoutMs} ms:\n${proc.log().slice(-2000)}`);
}
