// What createConnector accepts besides the URL: a logger, read concurrency, the chunk/part size, and the
// retry policy for transient backend failures. Defaults live here, shared by every driver.

import { tcError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** The part of a logger the connectors use: retries at debug, giving up and connection loss at warn. */
export type ConnectorLog = Pick<Logger, 'debug' | 'info' | 'warn'>;

/** Bounded retries with jittered exponential backoff (see connector-retry.ts). */
export interface RetryPolicy {
  /** Tries in all, the first included (>= 1). Default 5. */
  readonly attempts?: number;
  /** The first backoff, in milliseconds; it doubles each try. Default 100. */
  readonly baseDelayMs?: number;
  /** The longest backoff, in milliseconds. Default 2000. */
  readonly maxDelayMs?: number;
}

/** Options of {@link createConnector}. */
export interface ConnectorOptions {
  readonly log?: ConnectorLog;
  /** Ranged requests one readInto keeps in flight (S3 GETs, Redis GETRANGEs in the pipeline). Default 16. */
  readonly concurrency?: number;
  /**
   * Redis: the chunk size of stored objects (an object above it is split into several chunk keys); default
   * 64 MiB, below Redis' 512 MB value limit. S3: the size of one ranged GET and of one multipart-upload part
   * (at least 5 MiB, S3's smallest part); default 8 MiB. Unused by file://.
   */
  readonly chunkBytes?: number;
  readonly retry?: RetryPolicy;
  /**
   * How long one backend call may take before it counts as a failed attempt, in milliseconds (Redis: one
   * command; connecting). Default 60000.
   */
  readonly callTimeoutMs?: number;
}

/** Default of {@link ConnectorOptions.concurrency}. */
export const DEFAULT_CONCURRENCY = 16;
/** Default of {@link ConnectorOptions.chunkBytes} for redis://. */
export const DEFAULT_REDIS_CHUNK_BYTES = 64 * 1024 * 1024;
/** Default of {@link ConnectorOptions.chunkBytes} for s3://. */
export const DEFAULT_S3_PART_BYTES = 8 * 1024 * 1024;
/** Default of {@link ConnectorOptions.callTimeoutMs}. */
export const DEFAULT_CONNECTOR_CALL_TIMEOUT_MS = 60_000;

/**
 * A positive integer option, or its default when unset.
 *
 * @throws TC_ERR_INVALID_ARGUMENT when set to anything else, or above `max`.
 */
export function positiveOption(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `connector option ${name} must be an integer from 1 to ${max}, got ${value}`, {
      details: { option: name },
    });
  }
  return value;
}
