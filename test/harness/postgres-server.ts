// A PostgreSQL cluster from PATH for tests (initdb + postgres): a free port on 127.0.0.1, a temporary
// directory, trust authentication for the `postgres` role, durability off. PostgreSQL refuses to run as
// root: then both run as the unprivileged `postgres` user through `runuser`, when that user exists.

import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findOnPath, freePort, spawnWatched, waitReady, type WatchedProcess } from './server-process.js';

const run = promisify(execFile);

/** A PostgreSQL cluster the test harness runs. */
export interface PostgresServer {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:PORT/postgres`. */
  readonly url: string;
  readonly dir: string;
  /** Stops the server (fast shutdown) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory (after stop()). */
  start(): Promise<void>;
}

/** The user to run PostgreSQL as: undefined when not root; null when root and no `postgres` user exists. */
function runAs(): { user: string; uid: number; gid: number } | undefined | null {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined || findOnPath('runuser') === undefined) return null;
  return { user: 'postgres', uid: Number(uid), gid: Number(gid) };
}

/** Why no PostgreSQL cluster can be started here, or undefined when one can. */
export function postgresServerMissing(): string | undefined {
  const missing = ['initdb', 'postgres'].filter((b) => findOnPath(b) === undefined);
  if (missing.length > 0) return `${missing.join(' and ')} not on PATH`;
  if (runAs() === null) return 'running as root, and there is no `postgres` user (with runuser) to run PostgreSQL as';
  return undefined;
}

/** True once the server accepts a connection and answers a query. */
async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates and starts a cluster; the caller stops it (and removes `dir`, unless `removeWhenDone`), else it
 * stops when the test process exits.
 */
export async function startPostgresServer(options: { readonly removeWhenDone?: boolean } = {}): Promise<PostgresServer> {
  const initdb = findOnPath('initdb');
  const postgres = findOnPath('postgres');
  const user = runAs();
  if (initdb === undefined || postgres === undefined || user === null) throw new Error(postgresServerMissing());
  const dir = mkdtempSync(join(tmpdir(), 'tensorcast-pg-'));
  const data = join(dir, 'data');
  const asUser = (argv: string[]): [string, string[]] =>
    user === undefined ? [argv[0]!, argv.slice(1)] : ['runuser', ['-u', user.user, '--', ...argv]];
  try {
    mkdirSync(data, { mode: 0o700 });
    if (user !== undefined) {
      chownSync(dir, user.uid, user.gid);
      chownSync(data, user.uid, user.gid);
    }
    await run(...asUser([initdb, '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const settings = ['listen_addresses=127.0.0.1', `unix_socket_directories=${dir}`, 'fsync=off', 'synchronous_commit=off'];
  settings.push('full_page_writes=off', 'max_connections=200', 'shared_buffers=32MB');
  const command = [postgres, '-D', data, '-p', String(port), ...settings.flatMap((s) => ['-c', s])];
  let proc: WatchedProcess | undefined;
  const start = async (): Promise<void> => {
    proc = spawnWatched(command, {
      logFile: join(dir, 'postgres.log'),
      stopSignal: 'INT',
      ...(user === undefined ? {} : { asUser: user.user }),
      ...(options.removeWhenDone === true ? { removeWhenDone: dir } : {}),
    });
    await waitReady(`postgres on port ${port}`, proc, () => answers(url));
  };
  await start().catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    port,
    url,
    dir,
    stop: async () => {
      await proc?.stop();
      proc = undefined;
    },
    start,
  };
}
