// Parses an S3 connector URL: `s3://bucket/prefix?endpoint=http://host:port&region=R&forcePathStyle=true
// &accessKeyId=A&secretAccessKey=S[&sessionToken=T]`. Without keys in the URL the SDK's default chain
// (environment, shared files, instance roles) supplies the credentials.

import { tcError } from '../../core/errors.js';
import { redactConnectorUrl, urlSecrets } from '../connector-errors.js';

/** A parsed S3 connector URL. */
export interface S3ConnectorUrl {
  readonly bucket: string;
  /** The key prefix of every object: the URL's path with a trailing '/', or '' for the bucket's root. */
  readonly prefix: string;
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
  readonly forcePathStyle: boolean;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | undefined;
  /** The URL with its secrets redacted. */
  readonly redacted: string;
  readonly secrets: readonly string[];
}

const PARAMS = ['endpoint', 'region', 'forcePathStyle', 'accessKeyId', 'secretAccessKey', 'sessionToken'];
/** S3's bucket names (plus upper case and '_', which some S3-compatible servers allow). */
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/;

/**
 * Parses `url`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a bad bucket, an unknown parameter, a malformed endpoint, or only one
 *   of accessKeyId and secretAccessKey; the message never shows the secret.
 * @example parseS3ConnectorUrl('s3://models/llama-3-8b?endpoint=http://127.0.0.1:9000&forcePathStyle=true')
 */
export function parseS3ConnectorUrl(url: string): S3ConnectorUrl {
  const redacted = redactConnectorUrl(url);
  const bad = (why: string): Error =>
    tcError('TC_ERR_INVALID_ARGUMENT', `connector URL ${redacted}: ${why} (expected s3://bucket/prefix[?endpoint=...&region=...])`, {
      details: { connector: redacted },
    });
  const match = /^s3:\/\/([^/?#]*)([^?#]*)(\?[^#]*)?$/i.exec(url);
  if (match === null) throw bad('not an s3:// URL (or it has a fragment)');
  const bucket = match[1] ?? '';
  if (!BUCKET.test(bucket)) throw bad(`bad bucket name '${bucket}'`);
  let path: string;
  try {
    path = decodeURIComponent(match[2] ?? '').replace(/^\/+/, '');
  } catch {
    throw bad('the prefix is not valid percent-encoding');
  }
  const prefix = path === '' || path.endsWith('/') ? path : `${path}/`;
  const query = new URLSearchParams(match[3] ?? '');
  for (const name of query.keys()) {
    if (!PARAMS.includes(name)) throw bad(`unknown parameter '${name}' (known: ${PARAMS.join(', ')})`);
  }
  const endpoint = query.get('endpoint') ?? undefined;
  if (endpoint !== undefined) {
    let e: URL;
    try {
      e = new URL(endpoint);
    } catch {
      throw bad(`endpoint '${endpoint}' is not a URL`);
    }
    if (e.protocol !== 'http:' && e.protocol !== 'https:') throw bad(`endpoint '${endpoint}' is not http:// or https://`);
  }
  const style = query.get('forcePathStyle');
  if (style !== null && style !== 'true' && style !== 'false') throw bad(`forcePathStyle must be true or false, not '${style}'`);
  const accessKeyId = query.get('accessKeyId') ?? undefined;
  const secretAccessKey = query.get('secretAccessKey') ?? undefined;
  const sessionToken = query.get('sessionToken') ?? undefined;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) throw bad('give both accessKeyId and secretAccessKey, or neither');
  return {
    bucket,
    prefix,
    endpoint,
    region: query.get('region') ?? undefined,
    // An endpoint override usually means an S3-compatible server, where path style is the safe default.
    forcePathStyle: style === null ? endpoint !== undefined : style === 'true',
    credentials:
      accessKeyId === undefined || secretAccessKey === undefined
        ? undefined
        : { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) },
    redacted,
    secrets: urlSecrets(url),
  };
}
