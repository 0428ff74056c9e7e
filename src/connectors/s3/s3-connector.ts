// The s3:// connector on @aws-sdk/client-s3 (+ @aws-sdk/lib-storage for multipart uploads): endpoint
// override and path style for S3-compatible servers, credentials from the URL or the SDK's default chain,
// complete paginated listing, and ranged GETs issued concurrently straight into the caller's buffer. Every
// part of a read must carry the same ETag (If-Match, and checked on the response for servers that ignore
// it), so a rewrite during a read is TC_ERR_SOURCE_CHANGED, never mixed bytes.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isTensorcastError, tcError } from '../../core/errors.js';
import { compareUtf8 } from '../../core/strings.js';
import type { Connector, ObjectInfo, ReadOptions, WriteData, WriteOptions } from '../connector.js';
import { checkListPrefix, checkObjectKey, checkReadRange, shortRead, sourceChanged } from '../connector-keys.js';
import { forEachBounded, splitRange, type RangePart } from '../connector-parts.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_CONNECTOR_CALL_TIMEOUT_MS,
  DEFAULT_S3_PART_BYTES,
  positiveOption,
  type ConnectorLog,
  type ConnectorOptions,
} from '../connector-options.js';
import { retryPolicy, withRetries, type RetryScope } from '../connector-retry.js';
import { connectorError } from '../connector-errors.js';
import { httpStatus, noSuchBucket, s3Classifier, s3ErrorName, type S3Where } from './s3-errors.js';
import { parseS3ConnectorUrl, type S3ConnectorUrl } from './s3-connector-url.js';

/** S3's smallest multipart part (all but the last). */
const MIN_UPLOAD_PART_BYTES = 5 * 1024 * 1024;
/** S3's most parts in one multipart upload. */
const MAX_UPLOAD_PARTS = 10_000;
/** Parts one multipart upload sends at once (each held in memory). */
const UPLOAD_QUEUE = 4;
/** The largest body of a single PutObject from a buffer; above it, a multipart upload. */
const MAX_SINGLE_PUT_BYTES = 64 * 1024 * 1024;

/** `bytes START-END/TOTAL` of a Content-Range header. */
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/** The SDK client configuration of a parsed URL. */
function clientConfig(url: S3ConnectorUrl, concurrency: number, callTimeoutMs: number, maxAttempts: number): S3ClientConfig {
  const maxSockets = Math.max(64, concurrency * 4);
  return {
    ...(url.region === undefined
      ? url.endpoint === undefined
        ? {}
        : { region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1' }
      : { region: url.region }),
    ...(url.endpoint === undefined ? {} : { endpoint: url.endpoint }),
    forcePathStyle: url.forcePathStyle,
    ...(url.credentials === undefined ? {} : { credentials: url.credentials }),
    maxAttempts,
    // S3-compatible servers often lack the SDK's default CRC trailers (aws-chunked bodies): only when required.
    ...(url.endpoint === undefined ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: Math.min(callTimeoutMs, 10_000),
      requestTimeout: callTimeoutMs,
    },
  };
}

/** Counts (and reports) the bytes of a stream and checks the total against `expected` at its end. */
async function* counted(
  data: AsyncIterable<Uint8Array>,
  onBytes: (n: number) => void,
  expected: number | undefined,
  where: string,
  key: string,
) {
  let size = 0;
  for await (const piece of data) {
    size += piece.length;
    onBytes(piece.length);
    yield piece;
  }
  if (expected !== undefined && expected !== size) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${where}: write '${key}': expected ${expected} bytes, got ${size}`, {
      details: { key, expected, actual: size },
    });
  }
}

/**
 * A bucket prefix of S3 or an S3-compatible server seen as a connector.
 *
 * @example const c = await S3Connector.open('s3://models/llama?endpoint=http://127.0.0.1:9000&accessKeyId=A&secretAccessKey=S');
 */
export class S3Connector implements Connector {
  readonly displayUrl: string;
  private readonly w: S3Where;
  private readonly scope: RetryScope;
  private closed = false;

  private constructor(
    private readonly url: S3ConnectorUrl,
    private readonly client: S3Client,
    /** For multipart uploads of streams, which cannot be replayed: the SDK retries each part itself. */
    private readonly uploadClient: S3Client,
    private readonly partBytes: number,
    private readonly concurrency: number,
    options: ConnectorOptions,
  ) {
    this.displayUrl = url.redacted;
    this.w = { where: url.redacted, bucket: url.bucket, secrets: url.secrets };
    this.scope = { where: url.redacted, policy: retryPolicy(options.retry), classify: s3Classifier(this.w), log: options.log };
  }

  /**
   * A connector on the bucket and prefix of `url`. Nothing is sent yet: a missing bucket or refused
   * credentials show at the first call.
   *
   * @throws TC_ERR_INVALID_ARGUMENT for a bad URL or option.
   */
  static open(url: string, options: ConnectorOptions = {}): Promise<S3Connector> {
    const parsed = parseS3ConnectorUrl(url);
    // The SDK warns on stderr, once, that its releases after January 2027 need Node 22: not our users' concern.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const partBytes = positiveOption('chunkBytes', options.chunkBytes, DEFAULT_S3_PART_BYTES, 5 * 1024 ** 3);
    const concurrency = positiveOption('concurrency', options.concurrency, DEFAULT_CONCURRENCY, 1024);
    const callTimeoutMs = positiveOption('callTimeoutMs', options.callTimeoutMs, DEFAULT_CONNECTOR_CALL_TIMEOUT_MS);
    // Our retry loop retries reads and replayable writes; the SDK's own loop only the upload client's parts.
    const client = new S3Client(clientConfig(parsed, concurrency, callTimeoutMs, 1));
    const uploadClient = new S3Client(clientConfig(parsed, concurrency, callTimeoutMs, retryPolicy(options.retry).attempts));
    return Promise.resolve(new S3Connector(parsed, client, uploadClient, partBytes, concurrency, options));
  }

  private get log(): ConnectorLog | undefined {
    return this.scope.log;
  }

  /**
   * Runs one SDK call under the retry loop. With `rawStatuses`, a failure with one of those HTTP statuses
   * is final and left untranslated (the read path explains 412 and 416 with the object's context).
   */
  private call<T>(
    op: string,
    key: string | undefined,
    fn: () => Promise<T>,
    signal?: AbortSignal,
    rawStatuses: readonly number[] = [],
  ): Promise<T> {
    if (this.closed) return Promise.reject(tcError('TC_ERR_ABORTED', `${this.displayUrl}: the connector is closed`));
    const classify = s3Classifier(this.w, key);
    const scope: RetryScope = {
      ...this.scope,
      classify: (error) => {
        const status = httpStatus(error);
        return status !== undefined && rawStatuses.includes(status) ? { final: error as Error } : classify(error);
      },
    };
    return withRetries(scope, op, fn, signal);
  }

  /** Every object under the prefix (ListObjectsV2, all pages), keys relative to the prefix, ordered by key. */
  async list(prefix = ''): Promise<ObjectInfo[]> {
    checkListPrefix(prefix);
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    let skipped = 0;
    do {
      const page = await this.call(`list ${prefix}`, undefined, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.url.bucket,
            Prefix: this.url.prefix + prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        ),
      );
      for (const o of page.Contents ?? []) {
        const key = (o.Key ?? '').slice(this.url.prefix.length);
        try {
          checkObjectKey(key);
        } catch {
          skipped++; // e.g. a console's 'folder/' marker: not reachable through the key grammar
          continue;
        }
        out.push({ key, size: o.Size ?? 0, etag: o.ETag ?? '' });
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    if (skipped > 0) this.log?.debug({ connector: this.displayUrl, skipped }, 'connector listing skipped keys outside the key grammar');
    return out.sort((a, b) => compareUtf8(a.key, b.key));
  }

  async stat(key: string): Promise<ObjectInfo> {
    checkObjectKey(key);
    try {
      const head = await this.call(`stat ${key}`, key, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.url.bucket, Key: this.url.prefix + key })),
      );
      return { key, size: head.ContentLength ?? 0, etag: head.ETag ?? '' };
    } catch (error) {
      // HEAD answers a missing bucket with a bare 404 too: tell the two apart.
      if (isTensorcastError(error, 'TC_ERR_NOT_FOUND') && !(await this.bucketExists())) throw noSuchBucket(this.w);
      throw error;
    }
  }

  /** False only when the server says the bucket does not exist. */
  private async bucketExists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.url.bucket }));
      return true;
    } catch (error) {
      return !(httpStatus(error) === 404 || s3ErrorName(error) === 'NoSuchBucket' || s3ErrorName(error) === 'NotFound');
    }
  }

  /**
   * Ranged GETs of `chunkBytes` (default 8 MiB), `concurrency` at once, each copied into its place in
   * `dest`. Without `options.etag`, the first part's ETag pins the version for the others.
   */
  async readInto(key: string, offset: number, dest: Uint8Array, options: ReadOptions = {}): Promise<void> {
    checkObjectKey(key);
    checkReadRange(offset, dest);
    if (dest.length === 0) {
      const info = await this.stat(key);
      if (options.etag !== undefined && options.etag !== info.etag) throw sourceChanged(this.displayUrl, key, options.etag, info.etag);
      if (offset > info.size) throw shortRead(this.displayUrl, key, offset, 0, info.size);
      return;
    }
    const parts = splitRange(offset, dest.length, this.partBytes);
    let etag = options.etag;
    let rest = parts;
    if (etag === undefined) {
      etag = await this.readPart(key, parts[0]!, offset, dest, undefined, options.signal);
      rest = parts.slice(1);
    }
    const pinned = etag;
    await forEachBounded(
      rest,
      this.concurrency,
      async (part, signal) => void (await this.readPart(key, part, offset, dest, pinned, signal)),
      options.signal,
    );
  }

  /** One ranged GET into `dest`; resolves with the object's ETag. */
  private async readPart(
    key: string,
    part: RangePart,
    offset: number,
    dest: Uint8Array,
    etag: string | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const op = `read ${key}`;
    const length = dest.length;
    try {
      return await this.call(
        op,
        key,
        async () => {
          const res = await this.client.send(
            new GetObjectCommand({
              Bucket: this.url.bucket,
              Key: this.url.prefix + key,
              Range: `bytes=${part.offset}-${part.offset + part.length - 1}`,
              ...(etag === undefined ? {} : { IfMatch: etag }),
            }),
            signal === undefined ? {} : { abortSignal: signal },
          );
          const body = res.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
          const got = res.ETag ?? '';
          if (etag !== undefined && got !== etag) {
            body?.destroy?.();
            throw sourceChanged(this.displayUrl, key, etag, got);
          }
          // Where the body starts in the object and how long the object is (a server may ignore the range).
          const range = CONTENT_RANGE.exec(res.ContentRange ?? '');
          const start = range === null ? 0 : Number(range[1]);
          const total = range === null ? res.ContentLength : range[3] === '*' ? undefined : Number(range[3]);
          if (total !== undefined && offset + length > total) {
            body?.destroy?.();
            throw shortRead(this.displayUrl, key, offset, length, total);
          }
          if (start > part.offset || body === undefined) {
            body?.destroy?.();
            throw tcError(
              'TC_ERR_BACKEND',
              `${this.displayUrl}: read ${key}: the server answered bytes from ${start} for a range from ${part.offset}`,
            );
          }
          await this.copyBody(body, part.offset - start, part, dest);
          return got;
        },
        signal,
        [412, 416],
      );
    } catch (error) {
      throw await this.explainReadFailure(error, key, offset, length, etag);
    }
  }

  /** Copies `part.length` bytes of `body`, after skipping `skip`, to `dest` at `part.at`; a body that ends early throws (retried). */
  private async copyBody(
    body: AsyncIterable<Uint8Array> & { destroy?: () => void },
    skip: number,
    part: RangePart,
    dest: Uint8Array,
  ): Promise<void> {
    let toSkip = skip;
    let done = 0;
    for await (const chunk of body) {
      let piece = chunk;
      if (toSkip > 0) {
        const drop = Math.min(toSkip, piece.length);
        piece = piece.subarray(drop);
        toSkip -= drop;
      }
      const take = Math.min(piece.length, part.length - done);
      dest.set(piece.subarray(0, take), part.at + done);
      done += take;
      if (done === part.length) break; // leaving the loop destroys the rest (a server that sent more)
    }
    if (done < part.length) {
      const error = new Error(`the response body ended after ${done} of ${part.length} bytes`) as Error & { code: string };
      error.code = 'ERR_STREAM_PREMATURE_CLOSE';
      throw error;
    }
  }

  /** Turns 412 (If-Match failed) into TC_ERR_SOURCE_CHANGED and 416 (range past the end) into TC_ERR_SHORT_READ. */
  private async explainReadFailure(
    error: unknown,
    key: string,
    offset: number,
    length: number,
    etag: string | undefined,
  ): Promise<unknown> {
    if (isTensorcastError(error)) {
      if (error.code === 'TC_ERR_NOT_FOUND' && !(await this.bucketExists())) return noSuchBucket(this.w);
      return error;
    }
    const status = httpStatus(error);
    const name = s3ErrorName(error);
    if (status === 412 || name === 'PreconditionFailed') {
      const now = await this.stat(key).catch(() => undefined);
      return sourceChanged(this.displayUrl, key, etag ?? '?', now?.etag);
    }
    if (status === 416 || name === 'InvalidRange') {
      const now = await this.stat(key).catch(() => undefined);
      if (now === undefined) return error;
      if (etag !== undefined && now.etag !== etag) return sourceChanged(this.displayUrl, key, etag, now.etag);
      return shortRead(this.displayUrl, key, offset, length, now.size);
    }
    return error;
  }

  /**
   * One PutObject for a buffer up to 64 MiB (retried as a whole); otherwise a multipart upload whose parts
   * the SDK retries. S3 makes the object visible only when it is complete.
   */
  async write(key: string, data: WriteData, options: WriteOptions = {}): Promise<ObjectInfo> {
    checkObjectKey(key);
    const op = `write ${key}`;
    const Key = this.url.prefix + key;
    if (data instanceof Uint8Array && data.length <= MAX_SINGLE_PUT_BYTES) {
      if (options.size !== undefined && options.size !== data.length) {
        throw tcError('TC_ERR_INVALID_ARGUMENT', `${this.displayUrl}: write '${key}': expected ${options.size} bytes, got ${data.length}`, {
          details: { key, expected: options.size, actual: data.length },
        });
      }
      const res = await this.call(
        op,
        key,
        () =>
          this.client.send(
            new PutObjectCommand({ Bucket: this.url.bucket, Key, Body: data }),
            options.signal === undefined ? {} : { abortSignal: options.signal },
          ),
        options.signal,
      );
      options.onBytes?.(data.length);
      return { key, size: data.length, etag: res.ETag ?? '' };
    }
    let size = 0;
    const onBytes = (n: number): void => {
      size += n;
      options.onBytes?.(n);
    };
    const source: AsyncIterable<Uint8Array> = data instanceof Uint8Array ? Readable.from([data]) : data;
    const expected = options.size ?? (data instanceof Uint8Array ? data.length : undefined);
    const partSize = Math.max(this.partBytes, MIN_UPLOAD_PART_BYTES, Math.ceil((expected ?? 0) / MAX_UPLOAD_PARTS));
    const upload = new Upload({
      client: this.uploadClient,
      params: {
        Bucket: this.url.bucket,
        Key,
        Body: Readable.from(counted(source, onBytes, options.size, this.displayUrl, key), { objectMode: false }),
      },
      partSize,
      queueSize: Math.min(UPLOAD_QUEUE, this.concurrency),
      leavePartsOnError: false,
    });
    const abort = (): void => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      const res = await upload.done();
      return { key, size, etag: res.ETag ?? '' };
    } catch (error) {
      if (options.signal?.aborted === true) throw tcError('TC_ERR_ABORTED', `${this.displayUrl}: ${op} was aborted`);
      const cause = (error as { cause?: unknown }).cause;
      if (isTensorcastError(cause)) throw cause;
      if (isTensorcastError(error)) throw error;
      const failure = s3Classifier(this.w, key)(error);
      throw 'final' in failure
        ? failure.final
        : connectorError('TC_ERR_BACKEND', this.displayUrl, op, error, this.url.secrets, { reason: 'transient' });
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
  }

  async delete(key: string): Promise<void> {
    checkObjectKey(key);
    await this.call(`delete ${key}`, key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.url.bucket, Key: this.url.prefix + key })),
    );
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.client.destroy();
      this.uploadClient.destroy();
    }
    return Promise.resolve();
  }
}
