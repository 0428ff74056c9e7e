// How an AWS SDK failure is classified at the connector boundary: NoSuchKey/404 -> TC_ERR_NOT_FOUND,
// NoSuchBucket -> TC_ERR_NOT_FOUND naming the bucket, 401/403 and credential errors -> TC_ERR_AUTH,
// throttling, 5xx, timeouts and resets -> transient (retried, then a retryable TC_ERR_BACKEND).

import { tcError } from '../../core/errors.js';
import { connectorError, foreignMessage } from '../connector-errors.js';
import type { Failure } from '../connector-retry.js';

/** The fields of an SDK error the classification reads. */
interface SdkError {
  readonly name?: string;
  readonly Code?: string;
  readonly code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $retryable?: unknown;
}

const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  'TooManyRequestsException',
]);
const AUTH_NAMES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
  'AuthorizationHeaderMalformed',
]);
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** The HTTP status of an SDK error, when it got a response. */
export const httpStatus = (error: unknown): number | undefined => (error as SdkError | undefined)?.$metadata?.httpStatusCode;

/** The S3 error code (`NoSuchKey`, `SlowDown`, ...) or the SDK's error name. */
export const s3ErrorName = (error: unknown): string => {
  const e = error as SdkError | undefined;
  return e?.Code ?? e?.name ?? '';
};

/** Where an S3 call ran, for messages. */
export interface S3Where {
  readonly where: string;
  readonly bucket: string;
  readonly secrets: readonly string[];
}

/** TC_ERR_NOT_FOUND for a missing bucket. */
export const noSuchBucket = (w: S3Where): Error =>
  tcError('TC_ERR_NOT_FOUND', `${w.where}: bucket '${w.bucket}' does not exist`, {
    details: { connector: w.where, bucket: w.bucket, reason: 'no_such_bucket' },
  });

/**
 * A classifier for {@link withRetries}. `key` names the object of the call (for not-found messages).
 * Status 412 and 416 are not classified here: the read path turns them into TC_ERR_SOURCE_CHANGED and
 * TC_ERR_SHORT_READ with the object's context.
 */
export function s3Classifier(w: S3Where, key?: string): (error: unknown) => Failure {
  return (error) => {
    const name = s3ErrorName(error);
    const status = httpStatus(error);
    const code = (error as SdkError | undefined)?.code;
    if (name === 'AbortError') return { final: tcError('TC_ERR_ABORTED', `${w.where}: the call was aborted`) };
    if (name === 'NoSuchBucket') return { final: noSuchBucket(w) };
    if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
      return {
        final: tcError('TC_ERR_NOT_FOUND', `${w.where}: no object '${key ?? '?'}' in bucket '${w.bucket}'`, {
          details: { connector: w.where, bucket: w.bucket, ...(key === undefined ? {} : { key }), reason: 'no_such_key' },
        }),
      };
    }
    if (AUTH_NAMES.has(name) || status === 401 || status === 403) {
      return { final: connectorError('TC_ERR_AUTH', w.where, `S3 refused the credentials (${name || status})`, error, w.secrets) };
    }
    if (TRANSIENT_NAMES.has(name) || (status !== undefined && (status >= 500 || status === 429))) {
      return { transient: foreignMessage(error, w.secrets) };
    }
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return { transient: foreignMessage(error, w.secrets) };
    if (status === undefined && (error as SdkError | undefined)?.$retryable !== undefined)
      return { transient: foreignMessage(error, w.secrets) };
    return { final: connectorError('TC_ERR_BACKEND', w.where, `S3 error${name === '' ? '' : ` ${name}`}`, error, w.secrets) };
  };
}
