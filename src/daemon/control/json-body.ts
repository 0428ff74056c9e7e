// The control API's JSON body parser: bounds the nesting depth before anything recursive (JSON.parse,
// zod, JSON.stringify of a view) sees the body, so a deeply nested body is a 400, not a stack overflow.

import { isTensorcastError, tcError } from '../../core/errors.js';

/** Deepest nesting of arrays and objects accepted in a request body (views need 3). */
export const MAX_JSON_DEPTH = 64;

/**
 * True when `text`, read as JSON, nests arrays and objects deeper than `limit`; stops as soon as it does
 * (strings and their escapes are skipped, so brackets inside strings do not count).
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Parses a JSON request body.
 *
 * @throws TC_ERR_INVALID_ARGUMENT when the body nests deeper than {@link MAX_JSON_DEPTH} or is not JSON,
 *   or carries `__proto__` / `constructor.prototype` keys.
 * @example const body = parseJsonBody('{"path": "/models/llama"}');
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) return undefined;
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `invalid request: the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => {
      if (key === '__proto__' || (key === 'constructor' && typeof v === 'object' && v !== null && 'prototype' in v)) {
        throw tcError('TC_ERR_INVALID_ARGUMENT', `invalid request: the JSON body carries a forbidden key '${key}'`);
      }
      return v;
    });
  } catch (error) {
    if (isTensorcastError(error, 'TC_ERR_INVALID_ARGUMENT')) throw error;
    throw tcError('TC_ERR_INVALID_ARGUMENT', `invalid request: the body is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  return value;
}
