// Object keys (docs/api.md, "Objects"): `<namespace>/<name>`. The namespace is the first segment and owns
// the access token and the resident-bytes limit; the name is the rest. One validator for the daemon, the
// SDK, the CLI and the feature store, so every side refuses the same keys with the same message.

import { tcError } from './errors.js';

/** Longest key, in UTF-8 bytes. */
export const MAX_OBJECT_KEY_BYTES = 1024;
/** A namespace: letters, digits, `.`, `_`, `-`; 1 to 128 characters; not `.` or `..`. */
const NAMESPACE = /^[A-Za-z0-9._-]{1,128}$/;

/** A parsed object key. */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

/** Checks a namespace. @throws TC_ERR_INVALID_ARGUMENT */
export function checkNamespace(namespace: string): string {
  if (!NAMESPACE.test(namespace) || namespace === '.' || namespace === '..')
    throw tcError('TC_ERR_INVALID_ARGUMENT', `bad object namespace '${namespace}': use 1-128 of [A-Za-z0-9._-]`);
  return namespace;
}

/**
 * Splits and checks `<namespace>/<name>`: the name is 1+ segments separated by `/`, none empty, `.` or
 * `..`, with no NUL or other control character; the whole key at most 1024 UTF-8 bytes.
 *
 * @throws TC_ERR_INVALID_ARGUMENT
 */
export function parseObjectKey(key: string): ObjectKey {
  if (typeof key !== 'string' || key.length === 0) throw tcError('TC_ERR_INVALID_ARGUMENT', 'an object key must be a non-empty string');
  if (Buffer.byteLength(key, 'utf8') > MAX_OBJECT_KEY_BYTES)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `object key longer than ${MAX_OBJECT_KEY_BYTES} bytes: '${key.slice(0, 64)}...'`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `object key '${JSON.stringify(key)}' holds a control character`);
  const slash = key.indexOf('/');
  if (slash < 0) throw tcError('TC_ERR_INVALID_ARGUMENT', `object key '${key}' has no name: write <namespace>/<name>`);
  const namespace = checkNamespace(key.slice(0, slash));
  const name = key.slice(slash + 1);
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.' || segment === '..')
      throw tcError('TC_ERR_INVALID_ARGUMENT', `object key '${key}' has an empty, '.' or '..' segment`);
  }
  return { namespace, name };
}
