// The Connector interface: a remote model backend (a directory, Redis, an S3 bucket) seen as objects under
// the connector URL's prefix. Small on purpose: complete listing, stat, ranged reads straight into the
// caller's buffer, atomic writes, delete. Backend errors are translated to tensorcast codes at this
// boundary (missing -> TC_ERR_NOT_FOUND, refused credentials -> TC_ERR_AUTH, throttling and resets ->
// retryable TC_ERR_BACKEND after bounded, jittered retries). Implementations: file/, redis/, s3/.

/** One object: its key (relative to the connector's prefix), size and version tag. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /**
   * A tag that changes whenever the object's bytes change (S3 ETag, a Redis manifest's version, a file's
   * size+mtime): a reader passes it back to detect an object rewritten between stat and read.
   */
  readonly etag: string;
}

/**
 * Bytes to write: a buffer, or a stream of buffers. A connector may hold on to a yielded buffer until the
 * write resolves (it is sent asynchronously): yield fresh buffers, never one that is refilled.
 */
export type WriteData = Uint8Array | AsyncIterable<Uint8Array>;

/** Options of {@link Connector.readInto}. */
export interface ReadOptions {
  /** The etag seen by stat/list: a read of a changed object fails with TC_ERR_SOURCE_CHANGED, never mixes bytes. */
  readonly etag?: string;
  readonly signal?: AbortSignal;
}

/** Options of {@link Connector.write}. */
export interface WriteOptions {
  /** Total bytes, when known (lets a backend choose a single put or a multipart upload). */
  readonly size?: number;
  readonly signal?: AbortSignal;
  /** Hears about bytes written, for progress. */
  readonly onBytes?: (bytes: number) => void;
}

/**
 * A remote model backend.
 *
 * @example
 * const c = await createConnector('s3://models/llama-3-8b?endpoint=http://127.0.0.1:9000');
 * const files = await c.list('');
 * await c.readInto('model-00001-of-00004.safetensors', 0, header);
 */
export interface Connector {
  /** The connector's URL with any credentials replaced by `***` (safe to print and log). */
  readonly displayUrl: string;
  /** Every object whose key starts with `prefix` (all pages), ordered by the keys' UTF-8 bytes. */
  list(prefix?: string): Promise<ObjectInfo[]>;
  /** @throws TC_ERR_NOT_FOUND */
  stat(key: string): Promise<ObjectInfo>;
  /**
   * Reads exactly `dest.length` bytes at `offset` of `key` into `dest`, all from one version of the object.
   * On any error the bytes in `dest` are not valid.
   *
   * @throws TC_ERR_NOT_FOUND; TC_ERR_SHORT_READ when the object ends first; TC_ERR_SOURCE_CHANGED when
   *   `options.etag` no longer matches, or the object changed during the read; TC_ERR_BACKEND (retryable)
   *   when the backend keeps failing; TC_ERR_INVALID_ARGUMENT for a bad key or offset
   */
  readInto(key: string, offset: number, dest: Uint8Array, options?: ReadOptions): Promise<void>;
  /**
   * Writes `key` atomically from a reader's point of view: a reader sees the old object (or none) until the
   * new one is complete. Resolves with the new object's info.
   */
  write(key: string, data: WriteData, options?: WriteOptions): Promise<ObjectInfo>;
  /** Removes `key` (no error when it does not exist). */
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
