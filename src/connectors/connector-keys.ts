// The object-key grammar every connector shares, so that a model directory copied from one backend to
// another keeps its names: '/'-separated segments, none empty, '.' or '..', no control characters, at
// most 1024 UTF-8 bytes (S3's limit). Also: the read-range check and the errors every driver's reads share.

import { tcError } from '../core/errors.js';

/** Longest object key, in UTF-8 bytes. */
export const MAX_OBJECT_KEY_BYTES = 1024;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why `key` is not a valid object key, or undefined when it is. */
function keyProblem(key: string, what: string): string | undefined {
  if (key.length === 0) return `${what} is empty`;
  if (Buffer.byteLength(key, 'utf8') > MAX_OBJECT_KEY_BYTES) return `${what} is longer than ${MAX_OBJECT_KEY_BYTES} bytes`;
  if (CONTROL.test(key)) return `${what} contains a control character`;
  if (key.startsWith('/')) return `${what} is absolute (starts with '/'); keys are relative to the connector's prefix`;
  for (const segment of key.split('/')) {
    if (segment === '') return `${what} has an empty segment ('//' or a trailing '/')`;
    if (segment === '.' || segment === '..') return `${what} has a '${segment}' segment`;
  }
  return undefined;
}

/**
 * Checks an object key against the shared grammar.
 *
 * @throws TC_ERR_INVALID_ARGUMENT naming the rule the key broke.
 * @example checkObjectKey('model-00001-of-00004.safetensors');
 */
export function checkObjectKey(key: string): void {
  if (typeof key !== 'string') throw tcError('TC_ERR_INVALID_ARGUMENT', `an object key must be a string, not ${typeof key}`);
  const problem = keyProblem(key, `object key ${JSON.stringify(key)}`);
  if (problem !== undefined) throw tcError('TC_ERR_INVALID_ARGUMENT', problem, { details: { key } });
}

/**
 * Checks a listing prefix: empty, or a string a key could start with (a trailing '/' is allowed).
 *
 * @throws TC_ERR_INVALID_ARGUMENT otherwise.
 */
export function checkListPrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw tcError('TC_ERR_INVALID_ARGUMENT', `a list prefix must be a string, not ${typeof prefix}`);
  if (prefix === '') return;
  const body = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const problem = keyProblem(body, `list prefix ${JSON.stringify(prefix)}`);
  // A prefix may end inside a segment ('model-0000'), but not in '.' or '..' segments or empty ones.
  if (problem !== undefined) throw tcError('TC_ERR_INVALID_ARGUMENT', problem, { details: { prefix } });
}

/**
 * Checks the arguments of a ranged read: a non-negative safe integer offset and a Uint8Array.
 *
 * @throws TC_ERR_INVALID_ARGUMENT otherwise.
 */
export function checkReadRange(offset: number, dest: Uint8Array): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `read offset must be a non-negative integer, got ${offset}`, { details: { offset } });
  }
  if (!(dest instanceof Uint8Array)) throw tcError('TC_ERR_INVALID_ARGUMENT', 'the read destination must be a Uint8Array');
}

/** TC_ERR_SHORT_READ for a read of `length` bytes at `offset` of an object of `size` bytes. */
export function shortRead(where: string, key: string, offset: number, length: number, size: number): Error {
  return tcError(
    'TC_ERR_SHORT_READ',
    `${where}: object '${key}' has ${size} bytes; a read of ${length} bytes at offset ${offset} runs past its end`,
    { details: { key, offset, length, size } },
  );
}

/** TC_ERR_SOURCE_CHANGED: `key` is no longer the version the caller saw. */
export function sourceChanged(where: string, key: string, expected: string, actual: string | undefined): Error {
  return tcError(
    'TC_ERR_SOURCE_CHANGED',
    `${where}: object '${key}' changed since it was listed (etag ${expected}, now ${actual ?? 'gone'}); the read delivered no valid bytes`,
    { details: { key, expected, ...(actual === undefined ? {} : { actual }) } },
  );
}

/** TC_ERR_NOT_FOUND for a missing object. */
export function objectNotFound(where: string, key: string, cause?: unknown): Error {
  return tcError('TC_ERR_NOT_FOUND', `${where}: no object '${key}'`, {
    details: { key, reason: 'no_such_key' },
    ...(cause === undefined ? {} : { cause }),
  });
}
