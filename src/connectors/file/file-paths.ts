// How the file connector maps its URL and object keys to paths: `file:///dir` is the root; a key is a path
// relative to it (the shared key grammar already forbids '..', '.' and absolute keys). Temporary files of
// writes in progress carry a reserved name that no key may use and listings skip.

import { randomBytes } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tcError } from '../../core/errors.js';
import { checkObjectKey } from '../connector-keys.js';

/** Names of temporary files (a write in progress): `.tc-tmp-<16 hex>`. */
const TEMP_NAME = /^\.tc-tmp-[0-9a-f]{16}$/;
const TEMP_START = '.tc-tmp-';

/** A fresh temporary file name. */
export const tempName = (): string => `${TEMP_START}${randomBytes(8).toString('hex')}`;

/** True for the name of a temporary file. */
export const isTempName = (name: string): boolean => TEMP_NAME.test(name);

/**
 * The root directory of a `file://` URL.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a host other than localhost, a query, a fragment or a relative path.
 * @example fileRoot('file:///var/models/llama') // '/var/models/llama'
 */
export function fileRoot(url: string): string {
  const bad = (why: string): Error =>
    tcError('TC_ERR_INVALID_ARGUMENT', `connector URL '${url}': ${why} (expected file:///absolute/dir)`, { details: { connector: url } });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('not a URL');
  }
  if (parsed.protocol !== 'file:') throw bad(`scheme '${parsed.protocol}' is not file:`);
  if (parsed.hostname !== '' && parsed.hostname !== 'localhost') throw bad(`host '${parsed.hostname}' is not local`);
  if (parsed.search !== '' || parsed.hash !== '') throw bad('a file URL takes no query or fragment');
  let root: string;
  try {
    root = fileURLToPath(parsed);
  } catch (error) {
    throw bad(error instanceof Error ? error.message : String(error));
  }
  if (!isAbsolute(root)) throw bad('the path is not absolute');
  const trimmed = root.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/**
 * The path of object `key` under `root`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a key outside the grammar or one that uses the temporary-file name.
 */
export function objectPath(root: string, key: string): string {
  checkObjectKey(key);
  const segments = key.split('/');
  if (segments.some((s) => s.startsWith(TEMP_START))) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `object key ${JSON.stringify(key)}: names starting '${TEMP_START}' are reserved`, {
      details: { key },
    });
  }
  return join(root, ...segments);
}
