// An S3-compatible server for tests: s3rver (an npm dev dependency, pure JavaScript) in a process of its
// own under the watchdog, on a free port of 127.0.0.1 with a temporary directory. What it does and does not
// do (the connector contract copes with both): ranged GETs, ListObjectsV2 with continuation tokens (run
// with --openssl-legacy-provider: its tokens are DES-encrypted), multipart uploads, ETags; no If-Match (the connector checks each response's ETag itself), no SigV4
// signature check (only the access key id is checked), and writes that are not atomic for readers.

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, spawnWatched, waitReady, type WatchedProcess } from './server-process.js';

/** The access key (id and secret) s3rver accepts by default. */
export const S3RVER_KEY = 'S3RVER';

/** An S3-compatible server the test harness runs. */
export interface S3Server {
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  readonly dir: string;
  /** Stops the server and waits for it to exit. */
  stop(): Promise<void>;
}

/** The path of s3rver's command-line entry point, or undefined when the package is not installed. */
export function s3rverBin(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
  } catch {
    return undefined;
  }
}

/** True once the server answers an HTTP request (any status). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/**
 * Starts s3rver; the caller stops it, else it stops (and its directory goes) when the test process exits.
 *
 * @example const server = await startS3Server({ removeWhenDone: true });
 */
export async function startS3Server(options: { readonly removeWhenDone?: boolean } = {}): Promise<S3Server> {
  const bin = s3rverBin();
  if (bin === undefined) throw new Error('the s3rver package is not installed (npm ci installs it: a dev dependency)');
  const dir = mkdtempSync(join(tmpdir(), 'tensorcast-s3-'));
  const port = await freePort();
  // s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
  const args = [
    process.execPath,
    '--openssl-legacy-provider',
    bin,
    '--directory',
    join(dir, 'data'),
    '--port',
    String(port),
    '--address',
    '127.0.0.1',
    '--silent',
  ];
  let proc: WatchedProcess | undefined;
  try {
    proc = spawnWatched(args, {
      logFile: join(dir, 's3rver.log'),
      stopSignal: 'TERM',
      ...(options.removeWhenDone === true ? { removeWhenDone: dir } : {}),
    });
    await waitReady(`s3rver on port ${port}`, proc, () => answers(port));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    dir,
    stop: async () => {
      await proc?.stop();
      proc = undefined;
    },
  };
}
