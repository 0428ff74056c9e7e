// The flags of the handshake client commands (publish, get, ls): where the listener is (--url or
// TENSORCAST_HANDSHAKE_URL), its token (--token-file, TENSORCAST_HANDSHAKE_TOKEN, TENSORCAST_HANDSHAKE_TOKEN_FILE)
// and TLS material (--tls-ca, --tls-cert, --tls-key).

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { tcError, wrapIoError } from '../../../core/errors.js';
import { handshakes, type HandshakeClient, type HandshakesOptions } from '../../../handshake/client/index.js';

/** The default listener of the client commands (the default of `handshake serve --listen`). */
export const DEFAULT_HANDSHAKE_URL = 'http://127.0.0.1:7072';

/** The parsed flags. */
export interface HandshakeClientFlags {
  readonly url?: string;
  readonly tokenFile?: string;
  readonly tlsCa?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

const ENV_HELP = `
Environment:
  TENSORCAST_HANDSHAKE_URL         the listener (when --url is not given; default ${DEFAULT_HANDSHAKE_URL})
  TENSORCAST_HANDSHAKE_TOKEN       the token itself (when --token-file is not given)
  TENSORCAST_HANDSHAKE_TOKEN_FILE  a file holding the token
  Without any of them no token is sent (a loopback listener without --token-file accepts that).`;

/** Adds the listener, token and TLS flags to `cmd`. */
export function withHandshakeClientFlags(cmd: Command): Command {
  return cmd
    .option('--url <url>', `the handshake listener (default TENSORCAST_HANDSHAKE_URL or ${DEFAULT_HANDSHAKE_URL})`)
    .option('--token-file <file>', 'a file holding the bearer token (default TENSORCAST_HANDSHAKE_TOKEN, TENSORCAST_HANDSHAKE_TOKEN_FILE)')
    .option('--tls-ca <file>', "PEM CA certificate of an https:// listener's certificate")
    .option('--tls-cert <file>', 'PEM client certificate, for a listener that requires one (mTLS)')
    .option('--tls-key <file>', 'PEM key of --tls-cert')
    .addHelpText('after', ENV_HELP);
}

/**
 * A client as the flags and the environment say (failure policy 'fail': a command answers at once).
 *
 * @throws TC_ERR_NOT_FOUND for a missing token or TLS file; TC_ERR_INVALID_ARGUMENT for an empty token or half a key pair
 */
export async function handshakeClientFrom(
  flags: HandshakeClientFlags,
  extra: Partial<HandshakesOptions> = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<HandshakeClient> {
  const url = flags.url ?? nonEmpty(env['TENSORCAST_HANDSHAKE_URL']) ?? DEFAULT_HANDSHAKE_URL;
  const token = await resolveToken(flags, env);
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', '--tls-cert and --tls-key go together');
  }
  const pem = (file: string | undefined, flag: string): Promise<Buffer | undefined> =>
    file === undefined
      ? Promise.resolve(undefined)
      : readFile(file).catch((e: unknown) => Promise.reject(wrapIoError(e, `cannot read ${flag}`, file)));
  const [ca, cert, key] = await Promise.all([
    pem(flags.tlsCa, '--tls-ca'),
    pem(flags.tlsCert, '--tls-cert'),
    pem(flags.tlsKey, '--tls-key'),
  ]);
  return handshakes({
    url,
    failurePolicy: 'fail',
    ...extra,
    ...(token === undefined ? {} : { token }),
    ...(ca === undefined && cert === undefined
      ? {}
      : { tls: { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) } }),
  });
}

async function resolveToken(flags: HandshakeClientFlags, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const fromFile = async (file: string, source: string): Promise<string> => {
    const text = await readFile(file, 'utf8').catch((e: unknown) =>
      Promise.reject(wrapIoError(e, `cannot read the token file (${source})`, file)),
    );
    const token = text.trim();
    if (token === '') throw tcError('TC_ERR_INVALID_ARGUMENT', `the token file ${file} (${source}) is empty`);
    return token;
  };
  if (flags.tokenFile !== undefined) return fromFile(flags.tokenFile, '--token-file');
  const envToken = nonEmpty(env['TENSORCAST_HANDSHAKE_TOKEN']);
  if (envToken !== undefined) return envToken;
  const envFile = nonEmpty(env['TENSORCAST_HANDSHAKE_TOKEN_FILE']);
  return envFile === undefined ? undefined : fromFile(envFile, 'TENSORCAST_HANDSHAKE_TOKEN_FILE');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Parses a rank flag. @throws TC_ERR_INVALID_ARGUMENT */
export function rankFlag(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${name} must be a non-negative integer, not '${value}'`);
  return n;
}
