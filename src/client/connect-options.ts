// Where a client finds its daemon and token: explicit options, else TENSORCAST_DAEMON / TENSORCAST_TOKEN,
// else http://127.0.0.1:7070 and the token file ~/.tensorcast/token that `tensorcast serve` writes.

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { tcError } from '../core/errors.js';

/** How to reach a daemon. */
export interface ConnectOptions {
  /** Control API URL (default TENSORCAST_DAEMON or http://127.0.0.1:7070). */
  readonly url?: string;
  /** Bearer token (default TENSORCAST_TOKEN, else the token file). */
  readonly token?: string;
  /** Token file (default ~/.tensorcast/token). */
  readonly tokenFile?: string;
  /** Data-plane connections per load (default 4). */
  readonly connections?: number;
  /** Default deadline of one load, in ms (default 10 minutes). */
  readonly timeoutMs?: number;
}

/** The default control URL. */
export const DEFAULT_DAEMON_URL = 'http://127.0.0.1:7070';

/** Resolves URL and token. @throws TC_ERR_AUTH when no token can be found */
export async function resolveConnect(opts: ConnectOptions, env: NodeJS.ProcessEnv = process.env): Promise<{ url: string; token: string }> {
  const url = opts.url ?? env['TENSORCAST_DAEMON'] ?? DEFAULT_DAEMON_URL;
  let token = opts.token ?? (opts.tokenFile === undefined ? env['TENSORCAST_TOKEN'] : undefined);
  if (token === undefined || token === '') {
    const file = opts.tokenFile ?? join(homedir(), '.tensorcast', 'token');
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch (error) {
      throw tcError('TC_ERR_AUTH', `no token: set TENSORCAST_TOKEN, pass --token-file, or start the daemon so it writes ${file}`, {
        cause: error,
      });
    }
  }
  return { url, token };
}
