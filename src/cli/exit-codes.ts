// How CLI failures become exit codes and stderr lines: 2 for bad input or not found, 1 for the rest.

import { TensorcastError } from '../core/errors.js';

/** Exit code for success. */
export const EXIT_OK = 0;
/** Exit code for other failures (I/O, internal, remote). */
export const EXIT_FAILURE = 1;
/** Exit code for bad input or something not found. */
export const EXIT_BAD_INPUT = 2;

/** The exit code for `error`. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof TensorcastError) {
    // A malformed payload or body (TC_ERR_MALFORMED) is bad input too, although a peer can also send one.
    return error.category === 'InvalidArgument' ||
      error.category === 'Format' ||
      error.category === 'NotFound' ||
      error.code === 'TC_ERR_MALFORMED'
      ? EXIT_BAD_INPUT
      : EXIT_FAILURE;
  }
  return EXIT_FAILURE;
}

/** One line for stderr: `error TC_ERR_...: message`, with ` [retryable]` when a retry can succeed. */
export function describeError(error: unknown): string {
  if (error instanceof TensorcastError) return `error ${error.code}: ${error.message}${error.retryable ? ' [retryable]' : ''}`;
  if (error instanceof Error) return `error TC_ERR_INTERNAL: ${error.message}`;
  return `error TC_ERR_INTERNAL: ${String(error)}`;
}
