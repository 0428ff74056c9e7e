// The tensorcast error classes: one base class carrying a stable code, one subclass per category.
// Translate foreign errors at boundaries with `wrapIoError`; callers match on `error.code`.

import { ERROR_CODES, type ErrorCategory, type ErrorCode } from './error-codes.js';

/** Extra, machine-readable facts about an error (file, tensor, byte offset, ...). */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>;

/** Options accepted by every tensorcast error constructor. */
export interface TensorcastErrorOptions {
  readonly cause?: unknown;
  readonly details?: ErrorDetails;
}

/**
 * Base class of every error tensorcast throws.
 *
 * @example
 * try { openSafetensors(path) } catch (e) {
 *   if (e instanceof TensorcastError && e.code === 'TC_ERR_FORMAT_INVALID_OFFSET') { ... }
 * }
 */
export class TensorcastError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: TensorcastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const info = ERROR_CODES[code];
    this.code = code;
    this.category = info.category;
    this.retryable = info.retryable;
    this.details = options.details ?? {};
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** A malformed or out-of-range argument. */
export class InvalidArgumentError extends TensorcastError {}
/** A malformed file (safetensors header, index). */
export class FormatError extends TensorcastError {}
/** Something named does not exist. */
export class NotFoundError extends TensorcastError {}
/** A lost compare-and-swap or other conflicting state. */
export class ConflictError extends TensorcastError {}
/** A missing or wrong credential. */
export class AuthError extends TensorcastError {}
/** A deadline ran out. */
export class TimeoutError extends TensorcastError {}
/** The resource was closed. */
export class ClosedError extends TensorcastError {}
/** A peer broke the wire protocol. */
export class ProtocolError extends TensorcastError {}
/** An operating-system or backend call failed. */
export class BackendError extends TensorcastError {}
/** Bytes that should exist could not be read in full. */
export class DataLossError extends TensorcastError {}
/** An invariant of tensorcast itself broke. */
export class InternalError extends TensorcastError {}

const CLASSES: Record<ErrorCategory, typeof TensorcastError> = {
  InvalidArgument: InvalidArgumentError,
  Format: FormatError,
  NotFound: NotFoundError,
  Conflict: ConflictError,
  Auth: AuthError,
  Timeout: TimeoutError,
  Closed: ClosedError,
  Protocol: ProtocolError,
  Backend: BackendError,
  DataLoss: DataLossError,
  Internal: InternalError,
};

/**
 * Builds the error of the right subclass for `code`.
 *
 * @example throw tcError('TC_ERR_NOT_FOUND', `no such tensor: ${name}`, { details: { tensor: name } });
 */
export function tcError(code: ErrorCode, message: string, options: TensorcastErrorOptions = {}): TensorcastError {
  const Class = CLASSES[ERROR_CODES[code].category];
  return new Class(code, message, options);
}

/** True when `error` is a tensorcast error, optionally with the given code. */
export function isTensorcastError(error: unknown, code?: ErrorCode): error is TensorcastError {
  return error instanceof TensorcastError && (code === undefined || error.code === code);
}

/**
 * Rebuilds the error a peer reported as `{code, message}` (an HTTP error body or an ERROR frame): a known
 * code gives the same class as on the peer, an unknown one TC_ERR_INTERNAL.
 */
export function errorFromWire(
  code: unknown,
  message: unknown,
  fallbackMessage: string,
  options: TensorcastErrorOptions = {},
): TensorcastError {
  const known = typeof code === 'string' && code in ERROR_CODES ? (code as ErrorCode) : 'TC_ERR_INTERNAL';
  return tcError(known, typeof message === 'string' ? message : fallbackMessage, options);
}

/** Node.js error codes that mean the caller passed a bad argument (a NUL byte in a path, a wrong type). */
const BAD_ARGUMENT_CODES = new Set(['ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_TYPE', 'ENAMETOOLONG', 'EISDIR', 'EACCES', 'EPERM']);

/**
 * Translates a Node.js system error into a tensorcast error naming `path` (a file, or an address for
 * listen errors): ENOENT/ENOTDIR -> TC_ERR_NOT_FOUND; ENOSPC/EDQUOT -> TC_ERR_NO_SPACE; a NUL byte or
 * other invalid path, EACCES, EISDIR -> TC_ERR_INVALID_ARGUMENT; EADDRINUSE -> TC_ERR_ADDRESS_IN_USE;
 * anything else TC_ERR_IO. Tensorcast errors pass through unchanged.
 *
 * @example await writeFile(p, b).catch((e: unknown) => { throw wrapIoError(e, 'cannot write', p); });
 */
export function wrapIoError(error: unknown, what: string, path: string): TensorcastError {
  if (error instanceof TensorcastError) return error;
  const sysCode = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = error instanceof Error ? error.message : String(error);
  const options = { cause: error, details: { path } };
  if (sysCode === 'ENOENT' || sysCode === 'ENOTDIR') {
    return tcError('TC_ERR_NOT_FOUND', `${what}: no such file or directory: ${path}`, options);
  }
  if (sysCode === 'ENOSPC' || sysCode === 'EDQUOT') {
    return tcError('TC_ERR_NO_SPACE', `${what}: ${path}: no space left on the device (${sysCode})`, options);
  }
  if (sysCode === 'EADDRINUSE') {
    return tcError('TC_ERR_ADDRESS_IN_USE', `${what}: ${path} is already in use by another process`, options);
  }
  if (sysCode !== undefined && BAD_ARGUMENT_CODES.has(sysCode)) {
    return tcError('TC_ERR_INVALID_ARGUMENT', `${what}: ${path}: ${reason}`, options);
  }
  return tcError('TC_ERR_IO', `${what}: ${path}: ${reason}`, options);
}

/** True when `error` came from the operating system or Node's argument checks (it carries an errno-style code). */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  const e = error as NodeJS.ErrnoException | undefined;
  return error instanceof Error && typeof e?.code === 'string' && (typeof e.syscall === 'string' || e.code.startsWith('ERR_INVALID_ARG'));
}
