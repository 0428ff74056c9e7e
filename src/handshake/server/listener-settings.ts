// Settings of a handshake listener as the CLI and the daemon take them (flags, environment, files): the
// listen address, the TTL in seconds, the token file and the TLS files. Each failure is TC_ERR_CONFIG naming
// the setting.

import { readFileSync } from 'node:fs';
import { tcError } from '../../core/errors.js';
import { parseByteSize, parseDuration } from '../../core/strings.js';
import type { HandshakeTlsOptions } from './handshake-server.js';

/** Default address of a standalone listener. */
export const DEFAULT_HANDSHAKE_LISTEN = '127.0.0.1:7072';

/**
 * `HOST:PORT` (IPv6 in brackets) to its parts.
 *
 * @throws TC_ERR_CONFIG otherwise.
 */
export function parseListenAddress(value: string, setting: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw tcError('TC_ERR_CONFIG', `${setting}: expected HOST:PORT, got '${value}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * The handshake TTL: a bare number is seconds (`60`, `0.5`); a unit may be given (`500ms`, `2m`).
 *
 * @throws TC_ERR_CONFIG for anything else, or a TTL under 10 ms.
 */
export function parseHandshakeTtl(value: string | number, setting: string): number {
  const text = String(value).trim();
  const ms = /^\d+(\.\d+)?$/.test(text) ? Math.round(Number(text) * 1000) : parseDuration(text);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 10) {
    throw tcError('TC_ERR_CONFIG', `${setting}: expected seconds (e.g. 60 or 0.5) or a duration like 500ms, at least 10ms; got '${text}'`);
  }
  return ms;
}

/**
 * A positive byte size (`4194304`, `4MiB`).
 *
 * @throws TC_ERR_CONFIG otherwise.
 */
export function parsePositiveBytes(value: string, setting: string): number {
  const n = parseByteSize(value);
  if (n === undefined || n <= 0) throw tcError('TC_ERR_CONFIG', `${setting}: expected a positive byte size like 4MiB, got '${value}'`);
  return n;
}

/**
 * The token in `path` (surrounding whitespace dropped).
 *
 * @throws TC_ERR_CONFIG when the file cannot be read or holds no token.
 */
export function readTokenFile(path: string, setting: string): string {
  const token = readSetting(path, setting).toString('utf8').trim();
  if (token.length === 0) throw tcError('TC_ERR_CONFIG', `${setting}: ${path} holds no token`);
  return token;
}

/** File paths of the TLS material (PEM). */
export interface HandshakeTlsFiles {
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly clientCa?: string | undefined;
}

/**
 * Reads the TLS files; undefined when none is given.
 *
 * @throws TC_ERR_CONFIG when only one of cert and key is given, a client CA without them, or a file cannot be read.
 */
export function readHandshakeTls(files: HandshakeTlsFiles, prefix: string): HandshakeTlsOptions | undefined {
  if (files.cert === undefined && files.key === undefined) {
    if (files.clientCa !== undefined) throw tcError('TC_ERR_CONFIG', `${prefix}-client-ca needs ${prefix}-cert and ${prefix}-key`);
    return undefined;
  }
  if (files.cert === undefined || files.key === undefined) {
    throw tcError('TC_ERR_CONFIG', `${prefix}-cert and ${prefix}-key go together`);
  }
  return {
    cert: readSetting(files.cert, `${prefix}-cert`),
    key: readSetting(files.key, `${prefix}-key`),
    ...(files.clientCa === undefined ? {} : { clientCa: readSetting(files.clientCa, `${prefix}-client-ca`) }),
  };
}

function readSetting(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw tcError('TC_ERR_CONFIG', `${setting}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}
