// Where a client finds its daemon and token, and how to say where the token came from when the daemon
// rejects it. Precedence: explicit options (token, then tokenFile), TENSORCAST_DAEMON / TENSORCAST_TOKEN (the
// token itself) / TENSORCAST_TOKEN_FILE (a file holding it), else http://127.0.0.1:7070 and the token file
// ~/.tensorcast/token that `tensorcast serve` writes.

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isTensorcastError, tcError, wrapIoError } from '../core/errors.js';

/** How to reach a daemon. */
export interface ConnectOptions {
  /** Control API URL (default TENSORCAST_DAEMON or http://127.0.0.1:7070). */
  readonly url?: string;
  /** Bearer token (default TENSORCAST_TOKEN, else a token file). */
  readonly token?: string;
  /** A file holding the token (default TENSORCAST_TOKEN_FILE, else ~/.tensorcast/token). */
  readonly tokenFile?: string;
  /**
   * Where `token` or `tokenFile` came from (e.g. `--token-file`), named in errors when the file is missing
   * or the daemon rejects the token. Default: `the token option` / `the tokenFile option`.
   */
  readonly tokenSource?: string;
  /** Data-plane connections per load (default 4). */
  readonly connections?: number;
  /** Default deadline of one load, in ms (default 10 minutes). */
  readonly timeoutMs?: number;
}

/** The resolved daemon URL and token, and a phrase saying where the token came from. */
export interface ResolvedConnect {
  readonly url: string;
  readonly token: string;
  /** E.g. `TENSORCAST_TOKEN`, `TENSORCAST_TOKEN_FILE=/etc/tc/token`, `the default token file /root/.tensorcast/token`. */
  readonly tokenSource: string;
}

/** The default control URL. */
export const DEFAULT_DAEMON_URL = 'http://127.0.0.1:7070';

/**
 * Resolves URL and token.
 *
 * @throws TC_ERR_NOT_FOUND when a token file named by option or TENSORCAST_TOKEN_FILE does not exist;
 *   TC_ERR_AUTH when no token can be found at all or the file is empty
 * @example const { url, token, tokenSource } = await resolveConnect({ tokenFile: '/etc/tc/token' });
 */
export async function resolveConnect(opts: ConnectOptions, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConnect> {
  const url = opts.url ?? nonEmpty(env['TENSORCAST_DAEMON']) ?? DEFAULT_DAEMON_URL;
  const token = nonEmpty(opts.token);
  if (token !== undefined) return { url, token, tokenSource: opts.tokenSource ?? 'the token option' };
  if (opts.tokenFile !== undefined) {
    const from = opts.tokenSource ?? 'the tokenFile option';
    return { url, ...(await readTokenFile(opts.tokenFile, from, `${from} ${opts.tokenFile}`)) };
  }
  const envToken = nonEmpty(env['TENSORCAST_TOKEN']);
  if (envToken !== undefined) return { url, token: envToken, tokenSource: 'TENSORCAST_TOKEN' };
  const envFile = nonEmpty(env['TENSORCAST_TOKEN_FILE']);
  if (envFile !== undefined) return { url, ...(await readTokenFile(envFile, 'TENSORCAST_TOKEN_FILE', `TENSORCAST_TOKEN_FILE=${envFile}`)) };
  const file = join(homedir(), '.tensorcast', 'token');
  try {
    return { url, ...(await readTokenFile(file, 'the default', `the default token file ${file}`)) };
  } catch (error) {
    if (!isTensorcastError(error, 'TC_ERR_NOT_FOUND')) throw error;
    throw tcError(
      'TC_ERR_AUTH',
      `no token: set TENSORCAST_TOKEN (the token) or TENSORCAST_TOKEN_FILE (a file holding it), pass --token-file, ` +
        `or start the daemon so it writes ${file}`,
      { cause: error },
    );
  }
}

/**
 * `error` with the token's origin added when it is the daemon rejecting the token (TC_ERR_AUTH); any other
 * error unchanged.
 */
export function withTokenSource(error: unknown, tokenSource: string): unknown {
  if (!isTensorcastError(error, 'TC_ERR_AUTH')) return error;
  return tcError('TC_ERR_AUTH', `${error.message} (token from ${tokenSource})`, {
    cause: error,
    details: { ...error.details, tokenSource },
  });
}

/** Reads a token file; `from` names who named it in errors (`--token-file`), `tokenSource` is the full phrase. */
async function readTokenFile(file: string, from: string, tokenSource: string): Promise<{ token: string; tokenSource: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw wrapIoError(error, `token file (${from})`, file);
  }
  const token = text.trim();
  if (token === '') throw tcError('TC_ERR_AUTH', `token file (${from}) is empty: ${file}`, { details: { path: file } });
  return { token, tokenSource };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
