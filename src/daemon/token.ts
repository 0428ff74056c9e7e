// The daemon's bearer token: configured, or read from the token file, or generated into it (mode 0600).
// Tokens are compared in constant time.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { tcError } from '../core/errors.js';

/** The token to use: `configured`, else the file's content, else a new one written to the file. */
export async function loadOrCreateToken(tokenFile: string, configured: string | undefined): Promise<{ token: string; generated: boolean }> {
  if (configured !== undefined) return { token: configured, generated: false };
  try {
    const token = (await readFile(tokenFile, 'utf8')).trim();
    if (token.length < 16) throw tcError('TC_ERR_CONFIG', `${tokenFile}: token shorter than 16 characters`);
    return { token, generated: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const token = randomBytes(32).toString('base64url');
  await mkdir(dirname(tokenFile), { recursive: true });
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(tokenFile, 0o600);
  return { token, generated: true };
}

export { tokenMatches } from '../core/secrets.js';
