// Opens a connector from its URL: `file:///dir`, `redis://` / `rediss://`, `s3://`. Each driver (and its
// npm package) is loaded only when its scheme is used.

import { tcError } from '../core/errors.js';
import type { Connector } from './connector.js';
import { redactConnectorUrl } from './connector-errors.js';
import type { ConnectorOptions } from './connector-options.js';

/** The URL forms, for error messages. */
const FORMS = 'file:///dir, redis://[user:pass@]host:port/<prefix>[?db=N], rediss://..., s3://bucket/prefix[?endpoint=...]';

/**
 * Opens the connector named by `url`. A malformed URL or an unknown scheme is TC_ERR_INVALID_ARGUMENT (a
 * connector URL is an argument of a command, not daemon configuration). Messages and logs show the URL
 * redacted (`Connector.displayUrl`).
 *
 * @throws TC_ERR_INVALID_ARGUMENT for an unknown scheme, a malformed URL or a bad option; TC_ERR_AUTH when
 *   Redis refuses the credentials; TC_ERR_BACKEND (retryable) when Redis cannot be reached.
 * @example
 * const c = await createConnector('redis://:secret@10.0.0.5:6379/llama-3-8b?db=2', { log, chunkBytes: 32 << 20 });
 * const c2 = await createConnector('s3://models/llama?endpoint=http://127.0.0.1:9000&forcePathStyle=true');
 */
export async function createConnector(url: string, options: ConnectorOptions = {}): Promise<Connector> {
  if (typeof url !== 'string') throw tcError('TC_ERR_INVALID_ARGUMENT', `a connector URL must be a string, not ${typeof url}`);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
  switch (scheme) {
    case 'file': {
      const { FileConnector } = await import('./file/file-connector.js');
      return FileConnector.open(url);
    }
    case 'redis':
    case 'rediss': {
      const { RedisConnector } = await import('./redis/redis-connector.js');
      return RedisConnector.open(url, options);
    }
    case 's3': {
      const { S3Connector } = await import('./s3/s3-connector.js');
      return S3Connector.open(url, options);
    }
    default:
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `connector URL '${redactConnectorUrl(url)}': scheme '${scheme || '(none)'}' is not supported (use ${FORMS})`,
        { details: { reason: 'unknown_scheme' } },
      );
  }
}
