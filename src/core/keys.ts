// The key grammar: which names may be bound to an artifact. One definition, checked at every entry point
// (CLI, SDK, control routes, catalog), so every key that can be bound can also be reached by every route.

import { tcError } from './errors.js';

/** Longest key, in bytes (keys are ASCII, so also in characters). */
export const MAX_KEY_BYTES = 256;

/** Characters of a key segment, besides the separators ':' and '/'. */
const SEGMENT_CHAR = /^[A-Za-z0-9._+@=-]$/;
/**
 * A key may not look like an artifact id (`tc1:...` and later versions, `tcl:...` for lazy artifacts):
 * clients pass those through.
 */
const RESERVED_PREFIX = /^tc([0-9]+|l):/;

/** Which rule a key broke (the `rule` detail of the error). */
export type KeyRule = 'type' | 'empty' | 'length' | 'character' | 'empty-segment' | 'dot-segment' | 'reserved';

/** A printable rendering of one character: itself when printable ASCII, else `U+XXXX`. */
const showChar = (c: string): string => {
  const code = c.codePointAt(0) ?? 0;
  return code >= 0x21 && code <= 0x7e ? `'${c}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
};

/**
 * Why `key` is not a valid key, or `undefined` when it is. The grammar (docs/api.md, "Keys"):
 * 1 to 256 bytes; segments separated by ':' or '/'; each segment non-empty, made of letters, digits and
 * `. _ + @ = -`, and neither `.` nor `..`; not starting with `tc<digits>:` (artifact ids).
 *
 * @example keyProblem('model:llama-8b:v3') === undefined
 */
export function keyProblem(key: unknown): { rule: KeyRule; message: string } | undefined {
  if (typeof key !== 'string') return { rule: 'type', message: `a key must be a string, not ${typeof key}` };
  if (key.length === 0) return { rule: 'empty', message: 'the key is empty' };
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) return { rule: 'length', message: `the key is ${bytes} bytes long; the limit is ${MAX_KEY_BYTES}` };
  let at = 0;
  for (const c of key) {
    if (c !== ':' && c !== '/' && !SEGMENT_CHAR.test(c)) {
      return {
        rule: 'character',
        message: `the key has ${showChar(c)} at position ${at}; keys use letters, digits, '.', '_', '+', '@', '=', '-' and the separators ':' and '/'`,
      };
    }
    at++;
  }
  for (const segment of key.split(/[:/]/)) {
    if (segment === '') {
      return { rule: 'empty-segment', message: "the key has an empty segment (a ':' or '/' at the start, at the end, or twice in a row)" };
    }
    if (segment === '.' || segment === '..') return { rule: 'dot-segment', message: `the key has a '${segment}' segment` };
  }
  if (RESERVED_PREFIX.test(key))
    return { rule: 'reserved', message: "keys may not start with 'tc<digits>:' or 'tcl:' (that is an artifact id)" };
  return undefined;
}

/**
 * True when `text` is written like an artifact id (`tc1:...`, `tcl:...`) rather than a key: clients pass it
 * through unresolved.
 *
 * @example isArtifactIdLike('tcl:5416...') === true
 */
export function isArtifactIdLike(text: string): boolean {
  return RESERVED_PREFIX.test(text);
}

/**
 * Checks `key` against the key grammar and returns it.
 *
 * @throws TC_ERR_INVALID_ARGUMENT naming the rule broken (details: `rule`)
 * @example const key = validateKey(flags.key, '--key');
 */
export function validateKey(key: unknown, what = 'key'): string {
  const problem = keyProblem(key);
  if (problem !== undefined) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `invalid ${what}: ${problem.message}`, { details: { rule: problem.rule } });
  }
  return key as string;
}

/** `text` with every character outside printable ASCII shown as `\u{...}`, safe to print on a terminal. */
export function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
}
