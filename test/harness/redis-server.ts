// A redis-server from PATH for tests: a free port on 127.0.0.1, a temporary directory, optional password,
// persistence and TLS (a self-signed certificate made with openssl); stop() and start() again on the same
// port and directory.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath, freePort, spawnWatched, waitReady, type WatchedProcess } from './server-process.js';

/** A redis-server the test harness runs. */
export interface RedisServer {
  readonly port: number;
  /** `redis://[:password@]127.0.0.1:PORT`. */
  readonly url: string;
  readonly dir: string;
  /** With `tls`: `rediss://[:password@]localhost:TLSPORT` and the certificate (its own CA) to trust. */
  readonly tls?: { readonly url: string; readonly caFile: string };
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory (after stop()). */
  start(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** requirepass. */
  readonly password?: string;
  /** Keep data across stop()/start() (an append-only file in the directory). */
  readonly persistent?: boolean;
  /** The server removes its directory when it stops (a server shared by a whole test process). */
  readonly removeWhenDone?: boolean;
  /** Also listen with TLS on a second port, with a self-signed certificate for localhost (needs openssl). */
  readonly tls?: boolean;
}

/** Why no redis-server can be started here, or undefined when one can. */
export function redisServerMissing(): string | undefined {
  return findOnPath('redis-server') === undefined ? 'redis-server is not on PATH' : undefined;
}

/** PING over a raw socket: true on +PONG (or NOAUTH, which also means the server answers). */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
  });
}

/**
 * Starts a redis-server; the caller stops it (and removes `dir`), else it stops when the test process exits.
 *
 * @example const server = await startRedisServer({ persistent: true });
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = findOnPath('redis-server');
  if (binary === undefined) throw new Error('redis-server is not on PATH');
  const dir = mkdtempSync(join(tmpdir(), 'tensorcast-redis-'));
  const port = await freePort();
  const args = [binary, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no'];
  args.push('--appendonly', options.persistent === true ? 'yes' : 'no');
  if (options.password !== undefined) args.push('--requirepass', options.password);
  const tlsPort = options.tls === true ? await freePort() : undefined;
  if (tlsPort !== undefined) {
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    args.push('--tls-port', String(tlsPort), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert);
    args.push('--tls-auth-clients', 'no');
    const subject = ['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'];
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', ...subject], {
        stdio: 'ignore',
      });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }
  let proc: WatchedProcess | undefined;
  const start = async (): Promise<void> => {
    proc = spawnWatched(args, {
      logFile: join(dir, 'redis.log'),
      stopSignal: 'TERM',
      ...(options.removeWhenDone === true ? { removeWhenDone: dir } : {}),
    });
    await waitReady(`redis-server on port ${port}`, proc, () => pings(port));
  };
  await start().catch((error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    dir,
    ...(tlsPort === undefined ? {} : { tls: { url: `rediss://${auth}localhost:${tlsPort}`, caFile: join(dir, 'cert.pem') } }),
    stop: async () => {
      await proc?.stop();
      proc = undefined;
    },
    start,
  };
}
